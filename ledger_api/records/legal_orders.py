"""Legal orders to erase a record before its retention end: two people besides the filer must sign.

A court or regulator may order a record destroyed early. Because destruction cannot be undone and the
law otherwise forbids it, the custodian's system files the order (who filed it, the order's reference,
authority and date), and it is carried out only once a *second* person at the custodian, a records
officer named in ``retention.officers``, has countersigned it with their own key (EIP-712
``LegalErasure(bytes32 recordId,uint256 orderId,bytes32 order)`` under the consortium's consent domain,
``order`` being ``digest`` below), and an active auditor has signed the same ``LegalErasure`` with their
member key. Then the record is shredded, logged (``legal-order``) and anchored like any erasure. The order
stays as evidence with both signatures, which anyone can check against the officer's and the auditor's
accounts without trusting the custodian.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from medledger_crypto import recover_typed, typed_data
from sqlmodel import col, select

from ledger_api.auth import policy
from ledger_api.auth.caller import Caller
from ledger_api.consents.schemas import Signature, packed_signature, signature_parts
from ledger_api.core.db import session_scope
from ledger_api.errors import Conflict, Forbidden, InvalidValue, NotFound
from ledger_api.node import Node
from ledger_api.records import erasure
from ledger_api.records.models import ErasureOrder, ErasureOrderCreate, ErasureOrderPublic, ErasureOrderState, Record
from ledger_api.records.service import check_custody


def digest(order: ErasureOrder | ErasureOrderPublic) -> bytes:
    """What the officer signs: SHA-256 of the order's canonical JSON (sorted keys, no spaces)."""
    fields = {
        "id": order.id,
        "record_id": order.record_id,
        "reference": order.reference,
        "authority": order.authority,
        "issued_on": order.issued_on.isoformat(),
        "filed_by": order.filed_by,
    }
    return hashlib.sha256(
        json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).digest()


def countersign_document(
    order: ErasureOrder | ErasureOrderPublic, *, chain_id: int, contract: str
) -> dict[str, object]:
    """The EIP-712 document a records officer signs for ``order`` under the consortium's consent domain
    (``GET /v1/patients/{any}/signing-domain`` names ``chain_id`` and ``contract``)."""
    message = {"recordId": bytes.fromhex(order.record_id), "orderId": order.id, "order": digest(order)}
    return typed_data("LegalErasure", message, chain_id=chain_id, contract=contract)


def _public(order: ErasureOrder) -> ErasureOrderPublic:
    return ErasureOrderPublic(**order.model_dump(), digest=digest(order).hex())


def _load(node: Node, order_id: int) -> ErasureOrder:
    with session_scope(node.engine) as session:
        order = session.get(ErasureOrder, order_id)
    if order is None:
        raise NotFound(f"no erasure order {order_id} at this member", code="erasure-order-not-found")
    return order


def file(node: Node, caller: Caller, record_id: str, filed: ErasureOrderCreate) -> ErasureOrderPublic:
    policy.require(policy.OWN_SYSTEM, node, caller)
    with session_scope(node.engine) as session:
        record = session.get(Record, record_id)
        if record is None or record.erased_at is not None:
            raise NotFound(f"no record {record_id} at this member", code="record-not-found")
        check_custody(node, record, writing=True)
        order = ErasureOrder(**filed.model_dump(), record_id=record_id, created_at=datetime.now(UTC))
        session.add(order)
        session.flush()
        return _public(order)


def orders_of(node: Node, caller: Caller, record_id: str) -> list[ErasureOrderPublic]:
    policy.require(policy.OWN_SYSTEM_OR_AUDITOR, node, caller)
    with session_scope(node.engine) as session:
        found = session.exec(
            select(ErasureOrder).where(ErasureOrder.record_id == record_id).order_by(col(ErasureOrder.id))
        )
        return [_public(order) for order in found]


def orders(node: Node, caller: Caller, *, state: str | None, limit: int) -> list[ErasureOrderPublic]:
    """This hospital's legal erasure orders, newest first (``state``: only pending or only executed): what
    an auditor looks through for orders waiting for their signature."""
    policy.require(policy.OWN_SYSTEM_OR_AUDITOR, node, caller)
    query = select(ErasureOrder).order_by(col(ErasureOrder.id).desc()).limit(limit)
    if state is not None:
        query = query.where(ErasureOrder.state == state)
    with session_scope(node.engine) as session:
        return [_public(order) for order in session.exec(query)]


def get(node: Node, caller: Caller, order_id: int) -> ErasureOrderPublic:
    policy.require(policy.OWN_SYSTEM_OR_AUDITOR, node, caller)
    return _public(_load(node, order_id))


def countersign(node: Node, caller: Caller, order_id: int, officer: str, signature: Signature) -> ErasureOrderPublic:
    """A records officer's countersignature (not the one who filed it), checked against their key."""
    policy.require(policy.OWN_SYSTEM, node, caller)
    order = _pending(node, order_id)
    account = node.settings.retention.officers.get(officer)
    if account is None:
        raise Forbidden(f"{officer} is not a records officer of this hospital", code="not-an-officer")
    if officer == order.filed_by:
        raise Forbidden(
            "the officer who filed an order cannot countersign it: a second person must", code="same-person"
        )
    _check_signed_by(node, order, signature, account, f"{officer}'s key")
    return _record_approval(
        node, order_id, countersigned_by=officer, countersigner_account=account, signature=signature
    )


def approve(node: Node, caller: Caller, order_id: int, signature: Signature) -> ErasureOrderPublic:
    """An auditor's approval: their own EIP-712 signature over the order, kept with it."""
    policy.require(policy.AUDITOR_APPROVES, node, caller)
    order = _pending(node, order_id)
    _check_signed_by(node, order, signature, caller.address, "the approving auditor's key")
    return _record_approval(node, order_id, approved_by=caller.address, approval_signature=signature)


def _check_signed_by(node: Node, order: ErasureOrder, signature: Signature, account: str, whose: str) -> None:
    """That ``signature`` is ``account``'s over ``order``'s ``LegalErasure`` document, else a 4xx saying so."""
    try:
        document = countersign_document(
            order, chain_id=node.chain_id, contract=node.manifest.address("ConsentRegistry")
        )
        signer = recover_typed(document, *signature_parts(signature))
    except Exception:
        raise InvalidValue(
            "signature: not a valid signature", field="signature", code="consent-signature-malformed"
        ) from None
    if signer.lower() != account.lower():
        raise Forbidden(f"signature: not by {whose} over this order", code="signature-wrong-signer")


def _pending(node: Node, order_id: int) -> ErasureOrder:
    order = _load(node, order_id)
    if order.state != ErasureOrderState.PENDING:
        raise Conflict(f"erasure order {order_id} was carried out already", code="erasure-order-executed")
    return order


def _record_approval(
    node: Node,
    order_id: int,
    *,
    countersigned_by: str | None = None,
    countersigner_account: str | None = None,
    signature: Signature | None = None,
    approved_by: str | None = None,
    approval_signature: Signature | None = None,
) -> ErasureOrderPublic:
    with session_scope(node.engine) as session:
        order = session.get(ErasureOrder, order_id, with_for_update=True)
        assert order is not None
        if countersigned_by is not None and signature is not None:
            order.countersigned_by, order.countersigner_account = countersigned_by, countersigner_account
            order.countersignature = packed_signature(signature).hex()
        if approved_by is not None and approval_signature is not None:
            order.approved_by, order.approval_signature = approved_by, packed_signature(approval_signature).hex()
        session.add(order)
        ready = order.countersigned_by is not None and order.approved_by is not None
    if ready:
        _execute(node, order_id)
    return _public(_load(node, order_id))


def _execute(node: Node, order_id: int) -> None:
    order = _load(node, order_id)
    with session_scope(node.engine) as session:
        record = session.get(Record, order.record_id)
    if record is not None and record.erased_at is None:
        erasure.shred(node, record, requester=node.address, reason="legal-order")
    with session_scope(node.engine) as session:
        stored = session.get(ErasureOrder, order_id)
        assert stored is not None
        stored.state, stored.executed_at = ErasureOrderState.EXECUTED, datetime.now(UTC)
        session.add(stored)
