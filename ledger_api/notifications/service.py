"""Subscriptions, matching chain events to them, and signing and delivering webhooks.

Payloads are signed with HMAC-SHA256 under the subscription's own secret (``X-MedLedger-Signature:
t=<unix time>,v1=<hex>`` over ``<t>.<body>``), so a receiver can check both origin and freshness
without trusting the network; :func:`verify_signature` is the receiver's side, in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import func, update
from sqlmodel import Session, col, select

from ledger_api.access.models import Counter
from ledger_api.auth import policy
from ledger_api.auth.caller import Caller
from ledger_api.chain.calldata import checksum_address
from ledger_api.chain.transactions import chain_call
from ledger_api.chain.types import MemberStatus, Role
from ledger_api.core import headers as header_names
from ledger_api.core.db import session_scope
from ledger_api.errors import Conflict, ContractReverted, Forbidden, InvalidValue, NotFound
from ledger_api.node import Node
from ledger_api.notifications.delivery import ReceiverPolicy, ReceiverRefused
from ledger_api.notifications.events import AUDITOR_EVENT_TYPES, EVENT_TYPES, MEMBER_EVENT_TYPES, AccountEvent
from ledger_api.notifications.models import (
    Notification,
    NotificationPublic,
    Subscription,
    SubscriptionCreated,
    SubscriptionPublic,
)

log = structlog.get_logger("medledger.notifications")
SIGNATURE_HEADER = header_names.SIGNATURE
EVENT_ID_HEADER = header_names.EVENT_ID
EVENT_TYPE_HEADER = header_names.EVENT
CURSOR = "notify_block"


class SubscriptionIn(BaseModel):
    """A webhook subscription. ``patient``: whose events (default: the signed-in patient; auditors may
    leave it out for every patient's break-glass and reviews)."""

    url: str = Field(max_length=2048)
    events: list[str] = Field(min_length=1, max_length=len(EVENT_TYPES))
    patient: str | None = Field(default=None, pattern=r"^0x[0-9a-fA-F]{40}$")

    @field_validator("events")
    @classmethod
    def _known(cls, events: list[str]) -> list[str]:
        unknown = sorted(set(events) - set(EVENT_TYPES))
        if unknown:
            raise ValueError(f"unknown event types {unknown}; choose from {list(EVENT_TYPES)}")
        return sorted(set(events), key=EVENT_TYPES.index)


def receiver_policy(node: Node) -> ReceiverPolicy:
    """Production nodes deliver to public https receivers only (see ``notifications.delivery``)."""
    return ReceiverPolicy(public_only=node.settings.mode == "production")


def _check_url(node: Node, url: str) -> None:
    """The URL's form now (and in production, that its host resolves only to public addresses); the
    address is checked again at every connection."""
    policy = receiver_policy(node)
    try:
        _, host, port = policy.check_url(url)
        if policy.public_only:
            policy.resolve(host, port)
    except ReceiverRefused as exc:
        raise InvalidValue(f"url: {exc}", field="url", code="webhook-url-refused") from None


def _public(sub: Subscription) -> SubscriptionPublic:
    return SubscriptionPublic(
        id=sub.id,
        subscriber=sub.subscriber,
        role=sub.role,
        patient=sub.patient,
        events=sub.events.split(","),
        url=sub.url,
        from_block=sub.from_block,
        created_at=sub.created_at,
        active=sub.active,
    )


def subscribe(node: Node, caller: Caller, request: SubscriptionIn) -> SubscriptionCreated:
    """Creates a subscription for events from the next block on; the secret is returned only here."""
    _check_url(node, request.url)
    patient = checksum_address(request.patient) if request.patient else None
    if caller.kind == "patient":
        patient = patient or caller.address
    policy.require(policy.PATIENT_OR_DELEGATE_SUBSCRIBES, node, caller, patient if caller.kind == "patient" else None)
    if caller.kind == "auditor":
        extra = sorted(set(request.events) - set(AUDITOR_EVENT_TYPES))
        if extra:
            raise InvalidValue(
                f"events: auditors subscribe to {list(AUDITOR_EVENT_TYPES)} only, not {extra}",
                field="events",
                code="auditor-events-limited",
            )
    if caller.kind == "member":
        extra = sorted(set(request.events) - set(MEMBER_EVENT_TYPES))
        if extra or request.patient is not None:
            raise InvalidValue(
                f"events: a member subscribes to {list(MEMBER_EVENT_TYPES)} naming it (no patient), not {extra}",
                field="events",
                code="member-events-limited",
            )
        patient = None
    elif "consent_request" in request.events:
        raise InvalidValue(
            "events: consent_request is for the hospital that asked (patients see requests in their inbox)",
            field="events",
            code="member-events-limited",
        )
    cap = node.settings.notifications.max_subscriptions_per_subscriber
    with session_scope(node.engine) as session:
        held = session.exec(
            select(func.count())
            .select_from(Subscription)
            .where(col(Subscription.subscriber) == caller.address, col(Subscription.active))
        ).one()
    if held >= cap:
        raise Conflict(
            f"you hold {held} active subscriptions at this node, the most allowed ({cap}); end one first",
            code="subscription-limit",
        )
    head = int(chain_call(lambda: node.w3.eth.block_number))
    sub = Subscription(
        id=secrets.token_hex(16),
        subscriber=caller.address,
        role=caller.kind,
        patient=patient,
        events=",".join(request.events),
        url=request.url,
        secret=secrets.token_urlsafe(32),
        from_block=head + 1,
        created_at=datetime.now(UTC),
    )
    with session_scope(node.engine) as session:
        session.add(sub)
        session.flush()
        created = SubscriptionCreated(**_public(sub).model_dump(), secret=sub.secret)
    return created


def entitled(node: Node, sub: Subscription) -> bool:
    """Whether the subscriber may still receive what this subscription carries, as the chain says *now*.

    Rights are read at every delivery and every listing, never trusted from when the subscription was
    made: a delegate the patient removed, or an auditor governance suspended or removed, gets nothing more.
    """
    if sub.role in ("auditor", "member"):
        try:
            member = node.chain.registry.member(sub.subscriber)
        except ContractReverted:
            return False
        wanted = Role.AUDITOR if sub.role == "auditor" else Role.MEMBER
        return member.role == wanted and member.status == MemberStatus.ACTIVE
    if sub.patient is None:
        return False
    return sub.subscriber == sub.patient or node.chain.consents.is_delegate(sub.patient, sub.subscriber)


def end_subscription(session: Session, sub: Subscription) -> None:
    """Stops a subscription and cancels what is still pending for it (the history keeps it)."""
    sub.active = False
    session.add(sub)
    pending = update(Notification).where(
        col(Notification.subscription_id) == sub.id, col(Notification.state) == "pending"
    )
    session.exec(pending.values(state="cancelled"))


def end_if_not_entitled(node: Node, sub: Subscription) -> bool:
    """Ends ``sub`` if its subscriber lost the right to it; returns whether it still stands."""
    if not sub.active:
        return False
    if entitled(node, sub):
        return True
    with session_scope(node.engine) as session:
        stored = session.get(Subscription, sub.id)
        if stored is not None and stored.active:
            end_subscription(session, stored)
    log.info("subscription_ended_right_lost", subscription=sub.id, role=sub.role)
    return False


def subscriptions_of(node: Node, caller: Caller) -> list[SubscriptionPublic]:
    """The caller's subscriptions; any whose right has lapsed is ended first (and shown as inactive)."""
    with session_scope(node.engine) as session:
        rows = session.exec(
            select(Subscription)
            .where(col(Subscription.subscriber) == caller.address)
            .order_by(col(Subscription.created_at))
        ).all()
    for row in rows:
        if row.active and not end_if_not_entitled(node, row):
            row.active = False
    return [_public(row) for row in rows]


def unsubscribe(node: Node, caller: Caller, subscription_id: str) -> None:
    """Stops a subscription; deliveries still pending are cancelled (the history keeps them)."""
    with session_scope(node.engine) as session:
        sub = session.get(Subscription, subscription_id)
        if sub is None or not hmac.compare_digest(sub.subscriber, caller.address):
            raise NotFound(f"no subscription {subscription_id} of yours", code="subscription-not-found")
        end_subscription(session, sub)


def notifications_of(
    node: Node,
    caller: Caller,
    *,
    patient: str | None = None,
    subscription_id: str | None = None,
    after: int = 0,
    limit: int = 200,
) -> list[NotificationPublic]:
    """The notifications owed for a patient's account (patient, delegate, or this node's own system), or for
    one of the caller's subscriptions, with their delivery state."""
    query = select(Notification).where(col(Notification.id) > after)
    if patient is not None:
        policy.require(policy.PATIENT_DELEGATE_OR_OWN_SYSTEM_READS_NOTIFICATIONS, node, caller, patient)
        query = query.where(col(Notification.patient) == patient)
    if subscription_id is not None:
        with session_scope(node.engine) as session:
            sub = session.get(Subscription, subscription_id)
            if sub is None or sub.subscriber != caller.address:
                raise NotFound(f"no subscription {subscription_id} of yours", code="subscription-not-found")
        if not (end_if_not_entitled(node, sub) or (not sub.active and entitled(node, sub))):
            raise Forbidden(
                "you no longer have the right to this subscription's notifications; it has ended",
                code="subscription-right-ended",
            )
        query = query.where(col(Notification.subscription_id) == subscription_id)
    with session_scope(node.engine) as session:
        rows = session.exec(query.order_by(col(Notification.id)).limit(limit)).all()
        return [public_notification(row, detailed=caller.kind == "member" and caller.local) for row in rows]


#: all a subscriber learns of a failed delivery: not whether the receiver answered 404, refused the
#: connection or timed out (that would make the node a scanner of whatever the URL points at)
NOT_DELIVERED = "the receiver did not accept the delivery"


def public_notification(row: Notification, *, detailed: bool = False) -> NotificationPublic:
    """A notification as its subscriber sees it: its state, never the receiver's answer. ``detailed``: the
    node's own hospital system (its operators) also sees the status and error, to help a patient set up."""
    shown = NotificationPublic.model_validate(row, from_attributes=True)
    if detailed:
        return shown
    return shown.model_copy(
        update={"last_status": None, "last_error": NOT_DELIVERED if row.last_error is not None else None}
    )


# ---------------------------------------------------------------------------------------------- matching


def _matches(sub: Subscription, event: AccountEvent) -> bool:
    if event.block < sub.from_block or event.type not in sub.events.split(","):
        return False
    if sub.role == "member":  # a grant or revocation naming the member among its recipients
        return event.type in ("grant", "revocation") and sub.subscriber in event.data.get("grantees", ())
    if sub.patient is not None:
        return sub.patient == event.patient
    return sub.role == "auditor" and event.type in AUDITOR_EVENT_TYPES


def record_member_event(
    session: Session,
    *,
    member: str,
    event_id: str,
    event_type: str,
    patient: str,
    data: dict[str, Any],
    node_address: str,
    chain_id: int,
    occurred_at: datetime,
) -> int:
    """Owes an off-chain event about ``member``'s own business (a consent request's outcome) to each of its
    subscriptions that wants it, in the caller's transaction (the state change and the notification
    commit together, or neither)."""
    subscriptions = session.exec(
        select(Subscription).where(
            col(Subscription.active), col(Subscription.role) == "member", col(Subscription.subscriber) == member
        )
    ).all()
    body = {
        "id": event_id,
        "type": event_type,
        "patient": patient,
        "chain_id": chain_id,
        "block": None,
        "tx_hash": None,
        "occurred_at": occurred_at.isoformat(),
        "delivered_by": node_address,
        "data": data,
    }
    created, moment = 0, datetime.now(UTC)
    for sub in subscriptions:
        if event_type in sub.events.split(","):
            session.add(
                Notification(
                    subscription_id=sub.id,
                    event_id=event_id,
                    event_type=event_type,
                    patient=patient,
                    payload=body,
                    next_attempt_at=moment,
                    created_at=moment,
                )
            )
            created += 1
    return created


def cursor(session: Session) -> int | None:
    row = session.get(Counter, CURSOR)
    return None if row is None else row.value


def record_matches(
    session: Session,
    events: Sequence[AccountEvent],
    payloads: dict[str, dict[str, Any]],
    *,
    subscriptions: Sequence[Subscription],
    through_block: int,
) -> int:
    """Adds a notification per (subscription, event) match and moves the cursor, in the caller's
    transaction: a crash before commit redoes both, after commit neither."""
    moment = datetime.now(UTC)
    created = 0
    for event in events:
        for sub in subscriptions:
            if _matches(sub, event):
                session.add(
                    Notification(
                        subscription_id=sub.id,
                        event_id=event.event_id,
                        event_type=event.type,
                        patient=event.patient,
                        payload=payloads[event.event_id],
                        next_attempt_at=moment,
                        created_at=moment,
                    )
                )
                created += 1
    row = session.get(Counter, CURSOR)
    if row is None:
        session.add(Counter(name=CURSOR, value=through_block))
    else:
        row.value = through_block
        session.add(row)
    return created


# ---------------------------------------------------------------------------------------------- signing


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The ``X-MedLedger-Signature`` header value for ``body``."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify_signature(
    secret: str, header: str, body: bytes, *, tolerance_s: int = 300, now: float | None = None
) -> bool:
    """A receiver's check: the signature is ours over this very body, and fresh (constant-time compare)."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        t, given = int(fields["t"]), fields["v1"]
    except (ValueError, KeyError):
        return False
    if abs((time.time() if now is None else now) - t) > tolerance_s:
        return False
    expected = sign(secret, body, t).split("v1=", 1)[1]
    return hmac.compare_digest(expected, given)


def body_of(notification: Notification) -> bytes:
    return json.dumps(notification.payload, sort_keys=True, separators=(",", ":")).encode()


def backoff(node: Node, attempts: int) -> timedelta:
    settings = node.settings.notifications
    return timedelta(seconds=min(settings.backoff_max_s, settings.backoff_base_s * 2 ** (attempts - 1)))
