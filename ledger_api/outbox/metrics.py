"""The outbox's gauge: rows per state, read when metrics are scraped (one GROUP BY, no bookkeeping)."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import select

from ledger_api.core.db import session_scope
from ledger_api.core.observability import Metrics
from ledger_api.node import Node
from ledger_api.outbox.kinds import OutboxState
from ledger_api.outbox.models import OutboxItem


def refresh_outbox_gauge(node: Node, metrics: Metrics) -> None:
    with session_scope(node.engine) as session:
        rows = dict(session.exec(select(OutboxItem.state, func.count()).group_by(OutboxItem.state)).all())
    for state in OutboxState:
        metrics.outbox.labels(state.value).set(rows.get(state.value, 0))
