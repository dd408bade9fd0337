"""A patient's signed request about one of their records, as the custodian takes it: restrict it (EIP-712
``RecordRestriction``) or hide it from every consent (``RecordHiding``)."""

from __future__ import annotations

import time
from typing import Any

from eth_account.signers.local import LocalAccount
from medledger_crypto import RecordHiding, RecordRestriction, sign_typed


def signed_record_request(
    signer: LocalAccount,
    patient: str,
    record_id: str,
    *,
    chain_id: int,
    contract: str,
    restricted: bool | None = None,
    hidden: bool | None = None,
    issued_at: int | None = None,
) -> dict[str, Any]:
    """The body of ``POST /v1/records/{id}/restriction`` (``restricted`` given) or ``/hiding`` (``hidden``
    given), signed by ``signer`` now (``issued_at``: unix ms, default now) and valid for ten minutes."""
    issued = issued_at if issued_at is not None else time.time_ns() // 1_000_000
    deadline = int(time.time()) + 600
    common = {"patient": patient, "record_id": bytes.fromhex(record_id), "issued_at": issued, "deadline": deadline}
    message: RecordRestriction | RecordHiding
    if hidden is None:
        assert restricted is not None, "say what the request changes: restricted or hidden"
        message, change = RecordRestriction(restricted=restricted, **common), {"restricted": restricted}
    else:
        message, change = RecordHiding(hidden=hidden, **common), {"hidden": hidden}
    v, r, s = sign_typed(signer, message.document(chain_id=chain_id, contract=contract))
    return {
        "patient": patient,
        **change,
        "issued_at": issued,
        "deadline": deadline,
        "signature": {"v": v, "r": r.hex(), "s": s.hex()},
    }
