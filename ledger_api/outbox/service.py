"""Enqueues chain writes inside the caller's database transaction (see outbox.models)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import insert
from sqlalchemy.engine import Connection
from sqlmodel import Session, select

from ledger_api.outbox.kinds import ChainWrite, OutboxState
from ledger_api.outbox.models import OutboxItem


def enqueue(session: Session, message: ChainWrite) -> OutboxItem:
    """Adds an outbox row to the current transaction; it commits (or not) with the caller's data."""
    (item_id,) = enqueue_rows(session.connection(), [message])
    item = session.get(OutboxItem, item_id)
    assert item is not None
    return item


_INSERT = insert(OutboxItem.__table__).returning(OutboxItem.__table__.c.id, sort_by_parameter_order=True)  # type: ignore[attr-defined]


def enqueue_rows(connection: Connection, messages: Sequence[ChainWrite]) -> list[int]:
    """``enqueue`` for many rows as one multi-row INSERT on a transaction's connection (the
    per-release path); the rows' ids in the messages' order."""
    moment = datetime.now(UTC)
    rows = [
        {
            "kind": message.kind,
            "payload": message.payload(),
            "state": OutboxState.PENDING,
            "attempts": 0,
            "next_attempt_at": moment,
            "created_at": moment,
        }
        for message in messages
    ]
    return [int(row_id) for row_id in connection.execute(_INSERT, rows).scalars()]


def anchoring_state(item: OutboxItem | None) -> str:
    """How a row's chain write stands, for API views: pending, sent, anchored or failed."""
    if item is None:
        return "pending"
    return "anchored" if item.state == OutboxState.CONFIRMED else str(item.state)


def items_by_id(session: Session, ids: list[int]) -> dict[int, OutboxItem]:
    if not ids:
        return {}
    rows = session.exec(select(OutboxItem).where(OutboxItem.id.in_(ids)))  # type: ignore[union-attr]
    return {row.id: row for row in rows if row.id is not None}
