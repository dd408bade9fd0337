"""The patient's inbox, put together at the node they signed in at, from what the consortium view shows.

Nothing new is stored about what happened: consent requests come from the hospitals that raised them,
new records and accesses from each member's own answers (the same fan-out as the records and history
screens, with the patient's own proof), grants, revocations, break-glass declarations and their
reviews from the chain's events for this patient. The only thing kept is how far the patient has
read (``InboxMark``, at this node), so a community health centre's patient without a webhook server
still learns what happened, and what is new.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from anyio.to_thread import run_sync

from ledger_api.auth import policy
from ledger_api.auth.caller import Caller
from ledger_api.chain.block_clock import BlockClock
from ledger_api.consent_requests.service import requests_everywhere
from ledger_api.consortium.patient_view import patient_history, patient_records
from ledger_api.core.db import session_scope
from ledger_api.errors import InvalidValue
from ledger_api.inbox.models import ITEM_KINDS, Inbox, InboxItem, InboxMark, MemberStatus
from ledger_api.node import Node

#: the most items an inbox shows (newest first); older ones stay in the history screens
MAX_ITEMS = 500


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def inbox(node: Node, caller: Caller, patient: str, *, deadline_s: float) -> Inbox:
    """Everything about the patient across the consortium, newest first, with unread counts per kind."""
    await run_sync(policy.require, policy.PATIENT_OR_DELEGATE_SEES_OVERVIEW, node, caller, patient)
    requests = await requests_everywhere(node, caller, patient, deadline_s=deadline_s)
    records = await patient_records(node, caller, patient, deadline_s=deadline_s)
    history = await patient_history(node, caller, patient, limit=MAX_ITEMS, deadline_s=deadline_s)
    chain_items, seen_until = await run_sync(_chain_items_and_mark, node, patient, limiter=node.request_threads)
    items: list[InboxItem] = []
    for request in requests.requests:
        items.append(
            _item(
                f"consent_request:{request.id}",
                "consent_request",
                request.decided_at or request.created_at,
                request.requester,
                request.requester_name,
                seen_until,
                request.model_dump(mode="json"),
                needs_answer=request.state == "requested",
            )
        )
    for record in records.records:
        items.append(
            _item(
                f"new_record:{record.id}",
                "new_record",
                record.created_at,
                record.custodian,
                record.custodian_name,
                seen_until,
                {"record_id": record.id, "category": record.category, "media_type": record.media_type},
            )
        )
    for entry in history.timeline:
        items.append(
            _item(
                f"access:{entry.logged_by}:{entry.sequence}",
                "access",
                entry.created_at,
                entry.requester,
                entry.requester_name,
                seen_until,
                {
                    "record_id": entry.record_id,
                    "custodian": entry.logged_by,
                    "custodian_name": entry.logged_by_name,
                    "purpose": entry.purpose,
                    "action": entry.action,
                    "basis": entry.basis,
                    "break_glass": entry.break_glass,
                    "review": entry.review,
                },
            )
        )
    items += chain_items
    items.sort(key=lambda item: item.at, reverse=True)
    items = items[:MAX_ITEMS]
    unread = {kind: sum(1 for item in items if item.kind == kind and item.unread) for kind in ITEM_KINDS}
    incomplete = {
        outcome.member: MemberStatus(
            member=outcome.member, name=outcome.name, status=outcome.status, detail=outcome.detail
        )
        for outcome in (*records.members, *history.members)
        if outcome.status != "returned"
    }
    incomplete.update(
        {
            m.member: MemberStatus(member=m.member, name=m.name, status=m.status)
            for m in requests.members
            if m.status != "returned"
        }
    )
    return Inbox(
        patient=patient,
        seen_until=seen_until,
        unread=unread,
        unread_total=sum(unread.values()),
        incomplete=list(incomplete.values()),
        items=items,
    )


def _item(
    item_id: str,
    kind: Any,
    at: datetime,
    member: str | None,
    member_name: str | None,
    seen_until: datetime | None,
    detail: dict[str, Any],
    *,
    needs_answer: bool = False,
) -> InboxItem:
    at = _aware(at)
    return InboxItem(
        id=item_id,
        kind=kind,
        at=at,
        member=member,
        member_name=member_name,
        unread=seen_until is None or at > seen_until,
        needs_answer=needs_answer,
        detail=detail,
    )


def _chain_items_and_mark(node: Node, patient: str) -> tuple[list[InboxItem], datetime | None]:
    with session_scope(node.engine) as session:
        mark = session.get(InboxMark, patient)
        seen_until = _aware(mark.seen_until) if mark is not None else None
    names = {m.account: m.name for m in node.chain.registry.members()}
    clock = BlockClock(node.chain.reader)
    grantees: dict[int, tuple[str, ...]] = {}
    items = []
    for event in node.chain.consents.consent_events_of(patient)[-MAX_ITEMS:]:
        if event.kind == "grant":
            grantees[event.consent_id] = event.grantees
        named = event.grantees or grantees.get(event.consent_id, ())
        first = named[0] if named else None
        items.append(
            _item(
                f"{event.kind}:{event.block}:{event.log_index}",
                event.kind,
                datetime.fromtimestamp(clock(event.block), UTC),
                first,
                names.get(first or "", None),
                seen_until,
                {
                    "consent_id": str(event.consent_id),
                    "signer": event.signer,
                    "block": event.block,
                    "grantees": list(named),
                    "grantee_names": [names.get(g, g) for g in named],
                },
            )
        )
    for glass in node.chain.consents.break_glass_events_of(patient)[-MAX_ITEMS:]:
        items.append(
            _item(
                f"{glass.kind}:{glass.block}:{glass.log_index}",
                glass.kind,
                datetime.fromtimestamp(clock(glass.block), UTC),
                glass.member,
                names.get(glass.member),
                seen_until,
                {
                    "break_glass_id": str(glass.break_glass_id),
                    "block": glass.block,
                    **({"decision": glass.review.label} if glass.review is not None else {}),
                },
            )
        )
    items += _key_items(node, patient, clock, seen_until)
    return items, seen_until


def _key_items(node: Node, patient: str, clock: BlockClock, seen_until: datetime | None) -> list[InboxItem]:
    """Changes of the key that signs for the account: a recovery started (to be cancelled by the current key
    if it was not the patient's doing: it needs an answer while it is under way), cancelled, or completed."""
    pending = node.chain.consents.recovery(patient).new_key
    items = []
    kinds = frozenset({"key", "recovery-started", "recovery-cancelled"})
    for event in node.chain.consents.account_events_of(patient, kinds)[-MAX_ITEMS:]:
        stage = {"key": "changed", "recovery-started": "recovery", "recovery-cancelled": "cancelled"}[event.kind]
        detail = {"stage": stage, "new_key": event.new_key, "ready_at": event.ready_at, "block": event.block}
        if event.how is not None:
            detail["how"] = event.how.name.lower().replace("_", "-")
        items.append(
            _item(
                f"key:{event.block}:{event.log_index}",
                "key",
                datetime.fromtimestamp(clock(event.block), UTC),
                None,
                None,
                seen_until,
                detail,
                needs_answer=stage == "recovery" and pending == event.new_key,
            )
        )
    return items


def mark_seen(node: Node, caller: Caller, patient: str, until: datetime | None) -> datetime:
    """Marks the inbox read up to ``until`` (never later than now; never moves back)."""
    policy.require(policy.PATIENT_OR_DELEGATE_SEES_OVERVIEW, node, caller, patient)
    now = datetime.now(UTC)
    moment = _aware(until) if until is not None else now
    if moment > now:
        raise InvalidValue("until: lies in the future", field="until", code="inbox-mark-in-future")
    with session_scope(node.engine) as session:
        mark = session.get(InboxMark, patient)
        if mark is None:
            mark = InboxMark(patient=patient, seen_until=moment)
        elif moment > _aware(mark.seen_until):
            mark.seen_until = moment
        session.add(mark)
        return _aware(mark.seen_until)
