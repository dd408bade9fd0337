"""Patient-signed grants as a relay takes them: the message's fields and its signature, as JSON."""

from __future__ import annotations

import dataclasses
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
