"""Which handovers this node takes: only those its own hospital system agreed to, within their quotas.

Why: without it any member could push records into this node's store (it served them as its own
once the pusher moved custody on chain), filling its disk and making it answer for records it never
agreed to hold. The successor's own system now records the agreement first (from whom, how many
records, how many bytes, until when); a push from anyone else, past a quota or after the agreement
expired or was withdrawn, is refused before a byte is stored.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session, col, select

from ledger_api.auth import policy
from ledger_api.auth.caller import Caller
from ledger_api.chain.calldata import checksum_address
from ledger_api.core.db import as_utc, session_scope
from ledger_api.custody.models import IncomingAgreement, IncomingAgreementIn, IncomingAgreementPublic
from ledger_api.errors import Conflict, Forbidden, InvalidValue, NotFound, PayloadTooLarge
from ledger_api.node import Node


def _public(row: IncomingAgreement) -> IncomingAgreementPublic:
    active = row.withdrawn_at is None and as_utc(row.expires_at) > datetime.now(UTC)
    return IncomingAgreementPublic(**row.model_dump(), active=active)


def agree(node: Node, caller: Caller, request: IncomingAgreementIn) -> IncomingAgreementPublic:
    """This member's own system agrees to take records from ``predecessor``, within the quotas."""
    policy.require(policy.OWN_SYSTEM, node, caller)
    predecessor = checksum_address(request.predecessor)
    if predecessor == node.address:
        raise InvalidValue(
            "predecessor: a member does not hand records over to itself", field="predecessor", code="self-handover"
        )
    moment = datetime.now(UTC)
    row = IncomingAgreement(
        predecessor=predecessor,
        max_records=request.max_records,
        max_bytes=request.max_bytes,
        created_at=moment,
        expires_at=moment + timedelta(seconds=request.valid_for_s),
    )
    with session_scope(node.engine) as session:
        session.add(row)
        session.flush()
        return _public(row)


def agreements(node: Node, caller: Caller) -> list[IncomingAgreementPublic]:
    policy.require(policy.OWN_SYSTEM, node, caller)
    with session_scope(node.engine) as session:
        return [_public(r) for r in session.exec(select(IncomingAgreement).order_by(col(IncomingAgreement.id)))]


def withdraw(node: Node, caller: Caller, agreement_id: int) -> IncomingAgreementPublic:
    policy.require(policy.OWN_SYSTEM, node, caller)
    with session_scope(node.engine) as session:
        row = session.get(IncomingAgreement, agreement_id)
        if row is None:
            raise NotFound(f"no handover agreement {agreement_id}", code="agreement-not-found")
        row.withdrawn_at = row.withdrawn_at or datetime.now(UTC)
        session.add(row)
        session.flush()
        return _public(row)


def _active(session: Session, predecessor: str) -> IncomingAgreement | None:
    moment = datetime.now(UTC)
    rows = session.exec(
        select(IncomingAgreement)
        .where(col(IncomingAgreement.predecessor) == predecessor, col(IncomingAgreement.withdrawn_at).is_(None))
        .order_by(col(IncomingAgreement.id).desc())
    ).all()
    return next((r for r in rows if as_utc(r.expires_at) > moment), None)


def room_for(node: Node, predecessor: str, *, new_record: bool) -> int:
    """The bytes the predecessor may still push under its agreement; ``Forbidden`` without one,
    ``Conflict`` when its record quota is used up."""
    with session_scope(node.engine) as session:
        row = _active(session, predecessor)
        if row is None:
            raise Forbidden(
                "this member has not agreed to take records over from the caller (its own system "
                "records the agreement first: POST /v1/custody/agreements)",
                code="handover-not-agreed",
            )
        if new_record and row.records_received >= row.max_records:
            raise Conflict(
                f"the agreed handover allows {row.max_records} records; all have arrived", code="handover-quota-reached"
            )
        return row.max_bytes - row.bytes_received


def count_received(session: Session, predecessor: str, *, new_record: bool, size: int) -> None:
    """Counts a stored version against the agreement, in the storing transaction (quotas re-checked)."""
    row = _active(session, predecessor)
    if row is None:
        raise Forbidden("the handover agreement expired or was withdrawn meanwhile", code="handover-agreement-ended")
    if new_record and row.records_received >= row.max_records:
        raise Conflict(
            f"the agreed handover allows {row.max_records} records; all have arrived", code="handover-quota-reached"
        )
    if row.bytes_received + size > row.max_bytes:
        raise PayloadTooLarge(
            f"the agreed handover allows {row.max_bytes} bytes in all", code="handover-bytes-exceeded"
        )
    row.records_received += 1 if new_record else 0
    row.bytes_received += size
    session.add(row)
