"""The one error hierarchy of MedLedger.

Every domain failure is a ``LedgerError`` with an HTTP ``status`` and a stable ``code``; the API
maps them to RFC 9457 problem responses in one place and the CLI prints ``code: detail``.
Services and the chain layer raise these, never ``HTTPException``.

A class names the kind of failure (its status); ``code=`` at the raise site names the cause when a
client would act differently on it (``nonce-stale`` versus ``consent-already-revoked``, both 409).
Every code is described in ``ledger_api.core.problem_catalogue`` (English and Chinese), which the
node serves at the problem's ``type`` URI; a test keeps the two in step.
"""

from __future__ import annotations

from typing import Any


class LedgerError(Exception):
    """Root of all MedLedger errors."""

    status: int = 500
    code: str = "internal-error"
    title: str = "Internal error"

    def __init__(self, detail: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.extra = extra


class ChainUnavailable(LedgerError):
    """The chain node cannot be reached or did not answer in time: fail closed."""

    status = 503
    code = "chain-unavailable"
    title = "Chain unavailable"


class DatabaseUnavailable(LedgerError):
    """The node's database cannot be reached: nothing was written."""

    status = 503
    code = "database-unavailable"
    title = "Database unavailable"


class AssetsMissing(LedgerError):
    """The portal's front-end files were not built on this machine (``make deps`` copies them)."""

    status = 503
    code = "assets-missing"
    title = "Portal not built"


class BadRequest(LedgerError):
    """The request is malformed; ``field`` names the offending part when there is one."""

    status = 400
    code = "bad-request"
    title = "Bad request"


class InvalidValue(LedgerError):
    """The request was read, but a value in it is not acceptable (its schema or a rule of the operation):
    422, with ``field`` naming it. Malformed syntax (JSON, query encoding, headers) is ``BadRequest`` (400)."""

    status = 422
    code = "validation-error"
    title = "Invalid value"


class Unauthenticated(LedgerError):
    """No valid signature or session: who is asking is unknown."""

    status = 401
    code = "unauthenticated"
    title = "Authentication required"


class Forbidden(LedgerError):
    """The caller is known but not allowed to do this."""

    status = 403
    code = "forbidden"
    title = "Forbidden"


class ConsentDenied(Forbidden):
    """No consent covers this requester, category, purpose and time, and no break-glass is declared."""

    code = "consent-denied"
    title = "No consent covers this access"


class RecordRestricted(Forbidden):
    """The patient restricted the record (or all their records): it is not released for this purpose."""

    code = "record-restricted"
    title = "Record restricted by the patient"


class NotFound(LedgerError):
    status = 404
    code = "not-found"
    title = "Not found"


class CustodyMoved(LedgerError):
    """The record was handed over to another member (a leaving custodian's handover): ask its successor."""

    status = 410
    code = "custody-moved"
    title = "Custody moved to another member"


class Conflict(LedgerError):
    status = 409
    code = "conflict"
    title = "Conflict"


class PayloadTooLarge(LedgerError):
    status = 413
    code = "payload-too-large"
    title = "Payload too large"


class TooManyRequests(LedgerError):
    """The caller (or everyone) asked too often or has too much in flight; ``retry_after_s`` says when to retry."""

    status = 429
    code = "too-many-requests"
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after_s: int = 1, code: str | None = None) -> None:
        super().__init__(detail, code=code)
        self.retry_after_s = max(1, int(retry_after_s))


class UnsupportedMediaType(LedgerError):
    status = 415
    code = "unsupported-media-type"
    title = "Unsupported media type"


class IntegrityViolation(LedgerError):
    """Stored data does not match what the chain anchored: refuse to serve it."""

    status = 500
    code = "integrity-violation"
    title = "Stored data does not match its anchor"


class AnchorConflict(IntegrityViolation):
    """The chain holds a different anchor under one of our record ids (another custodian, patient,
    category or hash): never taken as "already anchored"; the outbox item fails and an alert is logged."""

    code = "anchor-conflict"
    title = "The chain holds a different anchor for this record"


class PeerUnavailable(LedgerError):
    """Another member's node could not be reached, or did not answer in time."""

    status = 503
    code = "peer-unavailable"
    title = "Member node unavailable"


class ContractReverted(LedgerError):
    """A contract call reverted with a custom error, decoded to its name and arguments.

    ``error_name`` is the Solidity error name (``ConsentRegistryExpiredSignature``) and
    ``arguments`` maps its parameter names to decoded values, so callers and tests can match on
    exactly what the contract said.
    """

    status = 409
    code = "contract-reverted"
    title = "Rejected by the contract"

    def __init__(self, error_name: str, arguments: dict[str, Any], contract: str | None = None) -> None:
        shown = ", ".join(f"{k}={_short(v)}" for k, v in arguments.items())
        super().__init__(f"{contract + ': ' if contract else ''}{error_name}({shown})")
        self.error_name = error_name
        self.arguments = arguments
        self.contract = contract


class TransactionFailed(LedgerError):
    """A transaction was mined but failed without a decodable reason (e.g. out of gas)."""

    status = 502
    code = "transaction-failed"
    title = "Transaction failed"


class DeploymentMismatch(LedgerError):
    """The chain does not hold the contracts the deployment manifest names."""

    status = 503
    code = "deployment-mismatch"
    title = "Contracts not found at the manifest's addresses"


def _short(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)
