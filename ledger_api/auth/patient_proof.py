"""One sign-in, the whole consortium: a patient's own signed sign-in message, shown by the node they
signed in to, lets the other member nodes answer that node *for the patient* (read-only).

Why: a patient's records and access history are spread over every member's database. The portal
runs on one member's node; asking the patient to sign in at every node (one wallet prompt each)
would be unusable, and letting any member read another member's patient listings would break
patient control. So the portal's sign-in message lists the resource ``CONSORTIUM_VIEW`` and says in
words that this hospital may show the patient their records and history from every member; the
node keeps the message and signature for the session's life and forwards them unchanged in
``X-MedLedger-On-Behalf-Of``. A peer accepts the proof only when

- the request itself is signed by an active member (the presenter) and is a GET,
- the message names the presenter's registered endpoint as its URI (the patient signed in *there*,
  so another member that saw the proof cannot use it),
- it is for this chain, has not expired and was not issued in the future,
- it lists ``CONSORTIUM_VIEW``, and the signature recovers to the account the message names.

The peer then treats the request as that patient's (or delegate's): the usual ownership rules apply.

A proof lives no longer than ``MAX_LIFETIME`` whatever its message says (every peer checks the
span from "Issued At" to "Expiration Time", and refuses one issued longer ago than that), and it
ends with the session: at sign-out the presenting node tells every member, which keep the proof's
digest (``EndedProof``) until it would have expired and refuse it from then on. A member that missed
the announcement (down at the time) still refuses it once ``MAX_LIFETIME`` has passed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ledger_api.auth import siwe
from ledger_api.chain.types import Member
from ledger_api.core import headers as header_names
from ledger_api.core import jsontext
from ledger_api.errors import Forbidden, Unauthenticated

HEADER = header_names.ON_BEHALF_OF.lower()
CONSORTIUM_VIEW = "urn:medledger:consortium-view"
MALFORMED = "malformed patient proof"
#: the clock skew tolerated on "Issued At"
_SKEW = timedelta(seconds=60)
#: the longest a consortium-view proof is honoured, from "Issued At", whatever the message asks
MAX_LIFETIME = timedelta(minutes=30)


@dataclass(frozen=True)
class VerifiedProof:
    """A proof that passed every check: who it speaks for, its digest and when it expires."""

    patient: str
    digest: str
    expires_at: datetime


def digest_of(message: str) -> str:
    """What identifies a proof (the SHA-256 of its signed message) in the ended-proof lists."""
    return hashlib.sha256(message.encode()).hexdigest()


def encode(message: str, signature: str) -> str:
    """The header value: base64url of ``{"message": ..., "signature": ...}``."""
    return base64.urlsafe_b64encode(json.dumps({"message": message, "signature": signature}).encode()).decode()


def verify(*, chain_id: int, presenter: Member, method: str, value: str) -> VerifiedProof:
    """The patient (or delegate) account the presenter acts for; ``Unauthenticated``/``Forbidden`` naming why not.

    The caller must still check that the proof has not been ended (``EndedProof``)."""
    if method.upper() != "GET":
        raise Forbidden("a patient's consortium-view proof allows reading only", code="proof-read-only")
    return check(chain_id=chain_id, presenter=presenter, value=value)


def check(*, chain_id: int, presenter: Member, value: str) -> VerifiedProof:
    """Every check of ``verify`` but the method (also what a peer runs before ending a proof)."""
    try:
        document = jsontext.loads(base64.urlsafe_b64decode(value.encode()))
        message, signature = str(document["message"]), str(document["signature"])
        parsed = siwe.parse_message(message)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise Unauthenticated(f"{MALFORMED}: {exc}", code="proof-malformed") from None
    if CONSORTIUM_VIEW not in parsed.resources:
        raise Forbidden("the patient's sign-in did not allow consortium-wide viewing", code="proof-not-consortium-view")
    if parsed.uri.rstrip("/") != presenter.endpoint.rstrip("/"):
        raise Forbidden(
            "the patient signed in at another member, not at the one presenting the proof", code="proof-wrong-member"
        )
    if parsed.chain_id != chain_id:
        raise Unauthenticated(f"patient proof is for chain {parsed.chain_id}, not {chain_id}", code="proof-wrong-chain")
    moment = datetime.now(UTC)
    if parsed.expiration is None:
        raise Unauthenticated(
            "a consortium-view sign-in needs an Expiration Time (at most "
            f"{int(MAX_LIFETIME.total_seconds() // 60)} minutes after Issued At)",
            code="proof-lifetime-too-long",
        )
    if parsed.expiration <= moment:
        raise Unauthenticated("patient proof expired", code="proof-expired")
    if parsed.issued_at > moment + _SKEW:
        raise Unauthenticated("patient proof is not valid yet", code="proof-not-yet-valid")
    if parsed.expiration - parsed.issued_at > MAX_LIFETIME or moment - parsed.issued_at > MAX_LIFETIME:
        raise Unauthenticated(
            f"patient proofs last at most {int(MAX_LIFETIME.total_seconds() // 60)} minutes",
            code="proof-lifetime-too-long",
        )
    try:
        signer = siwe.verify_signature(message, signature)
    except ValueError as exc:
        raise Unauthenticated(f"patient proof signature: {exc}", code="proof-signature-invalid") from None
    if signer != parsed.address:
        raise Unauthenticated("patient proof is not signed by the account it names", code="proof-signature-invalid")
    return VerifiedProof(patient=signer, digest=digest_of(message), expires_at=parsed.expiration)
