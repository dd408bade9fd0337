"""Who signed a patient's off-chain message (a record restriction, a link to a hospital's number, a refusal
of a consent request): the one recovery under the consortium's consent domain, one code when it fails."""

from __future__ import annotations

import time

from medledger_crypto import TypedMessage, recover_typed

from ledger_api.consents.schemas import Signature, signature_parts
from ledger_api.errors import Conflict, InvalidValue
from ledger_api.node import Node


def require_unexpired(deadline: int) -> None:
    """Refuses a signature whose deadline (unix seconds) has passed."""
    if deadline < int(time.time()):
        raise InvalidValue(
            "deadline: the signature's deadline has passed; ask the patient to sign again",
            field="deadline",
            code="signature-deadline-passed",
        )


def require_next_nonce(node: Node, patient: str, nonce: int) -> None:
    """Refuses a signature over another nonce than the patient's next one (the only one the chain takes)."""
    current = node.chain.consents.nonce(patient)
    if nonce < current:
        raise Conflict(
            f"nonce: signed for nonce {nonce}, which is used; the patient's next nonce is "
            f"{current} (GET /v1/patients/{{patient}}/signing-domain)",
            code="nonce-stale",
        )
    if nonce != current:
        raise Conflict(
            f"nonce: signed for nonce {nonce}, ahead of the patient's next nonce {current}; "
            "a signature is relayed only for the next nonce",
            code="nonce-ahead",
        )


def signer_of(node: Node, message: TypedMessage, signature: Signature) -> str:
    """The account that signed ``message`` (v 27/28 or 0/1, low s, as ``signature_parts`` requires)."""
    v, r, s = signature_parts(signature)
    document = message.document(chain_id=node.chain_id, contract=node.manifest.address("ConsentRegistry"))
    try:
        return str(recover_typed(document, v, r, s))
    except Exception:
        raise InvalidValue(
            "signature: not a valid signature", field="signature", code="consent-signature-malformed"
        ) from None
