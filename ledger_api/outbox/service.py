"""Enqueues chain writes inside the caller's database transaction (see outbox.models)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, select

from ledger_api.outbox.models import OutboxItem

KINDS = ("anchor_record", "anchor_version", "access_entry", "consent_grant", "consent_revoke", "delegate_change",
         "custody_transfer")


def enqueue(session: Session, kind: str, payload: dict[str, Any]) -> OutboxItem:
    """Adds an outbox row to the current transaction; it commits (or not) with the caller's data."""
    if kind not in KINDS:
        raise ValueError(f"unknown outbox kind {kind!r}")
    moment = datetime.now(UTC)
    item = OutboxItem(kind=kind, payload=payload, next_attempt_at=moment, created_at=moment)
    session.add(item)
    session.flush()
    return item


def anchoring_state(item: OutboxItem | None) -> str:
    """How a row's chain write stands, for API views: pending, sent, anchored or failed."""
    if item is None:
        return "pending"
    return {"confirmed": "anchored"}.get(item.state, item.state)


def items_by_id(session: Session, ids: list[int]) -> dict[int, OutboxItem]:
    if not ids:
        return {}
    rows = session.exec(select(OutboxItem).where(OutboxItem.id.in_(ids)))  # type: ignore[union-attr]
    return {row.id: row for row in rows if row.id is not None}
