"""What a patient's delegate (guardian) may do, read from the chain at the moment it is used.

Why here and not in each domain: a delegate's scope (view, or manage consents), end and excluded
categories bound every signed act and every read made for the patient; the contract enforces them on
the acts it receives (grants, revocations, restrictions), and the node enforces the same rule on the
acts it applies itself (a record's restriction or hiding, a refusal of a consent request, a link to a
patient number) and on what it shows. One reading of the rule keeps them from drifting apart.
"""

from __future__ import annotations

from ledger_api.chain.types import DelegateScope, Delegation
from ledger_api.errors import Forbidden
from ledger_api.node import Node


def standing(node: Node, patient: str, account: str) -> Delegation | None:
    """The account's delegation from the patient now (chain time), or None: not a delegate now."""
    if account.lower() == patient.lower():
        return None
    return node.chain.consents.delegation(patient, account)


def actor_of(node: Node, signer: str) -> str | None:
    """The account a signing key acts as now (after a key rotation or recovery, the account it was given;
    None: an account's replaced key, which signs for no one)."""
    return node.chain.consents.account_of(signer)


def require_acts_for(node: Node, patient: str, signer: str, *, categories: int = 0) -> None:
    """Refuses an act signed by ``signer`` unless by the patient's key, or by the key of a delegate who manages
    the patient's consents now and is not kept from any of ``categories`` (a bit set: what the act decides on)."""
    actor = actor_of(node, signer)
    if actor is not None and actor.lower() == patient.lower():
        return
    delegation = standing(node, patient, actor) if actor is not None else None
    if delegation is None:
        raise Forbidden("signature: not by the patient or a delegate of theirs", code="signature-wrong-signer")
    require_manages(delegation, categories)


def require_manages(delegation: Delegation, categories: int) -> None:
    """Refuses unless ``delegation`` lets its delegate decide on records of ``categories`` (a bit set)."""
    if delegation.scope != DelegateScope.MANAGE:
        raise Forbidden(
            "signature: by a delegate the patient appointed to view, not to manage; only the patient or a "
            "delegate who manages consents may do this",
            code="delegate-may-only-view",
        )
    if delegation.excluded_categories & categories:
        raise Forbidden(
            "signature: by a delegate the patient keeps from records of this kind; only the patient decides on them",
            code="delegate-category-excluded",
        )


def unseen_categories(node: Node, patient: str, reader: str) -> int:
    """The categories (a bit set) of the patient's records kept from ``reader``: a delegate's exclusions,
    nothing for the patient themself (or anyone else: their access is decided elsewhere)."""
    delegation = standing(node, patient, reader)
    return delegation.excluded_categories if delegation is not None else 0
