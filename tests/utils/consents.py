"""Patient-signed grants as a relay takes them: the message's fields and its signature, as JSON."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from eth_account.signers.local import LocalAccount
from medledger_crypto import ConsentGrant, sign_typed


def signature_json(signature: tuple[int, bytes, bytes]) -> dict[str, Any]:
    v, r, s = signature
    return {"v": v, "r": r.hex(), "s": s.hex()}


def signed_grant_body(signer: LocalAccount, message: ConsentGrant, *, chain_id: int, contract: str) -> dict[str, Any]:
    """The body of ``POST /v1/consents`` for ``message``, signed by ``signer`` under the consortium's domain."""
    signature = sign_typed(signer, message.document(chain_id=chain_id, contract=contract))
    return {**dataclasses.asdict(message), "signature": signature_json(signature)}


def grant_message(
    patient: str, grantee: str, *, nonce: int, deadline: int | None = None, lasts_s: int = 3600, **terms: int
) -> ConsentGrant:
    """A grant valid from a minute ago for ``lasts_s`` seconds, to be signed within ``deadline`` (default
    ten minutes from now); ``terms``: categories and purposes (labs, treatment by default)."""
    now = int(time.time())
    return ConsentGrant(
        patient=patient,
        grantee=grantee,
        valid_from=now - 60,
        valid_until=now + lasts_s,
        nonce=nonce,
        deadline=deadline if deadline is not None else now + 600,
        **{"categories": 1, "purposes": 1, **terms},
    )
