"""Who signed a patient's off-chain message (a record restriction, a link to a hospital's number, a refusal
of a consent request): the one recovery under the consortium's consent domain, one code when it fails."""

from __future__ import annotations

from medledger_crypto import TypedMessage, recover_typed

from ledger_api.consents.schemas import Signature, signature_parts
from ledger_api.errors import InvalidValue
from ledger_api.node import Node


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
