"""Writes access-log entries with their per-member sequence and queues their hashes for the chain.

The entry hash is SHA-256 over the canonical JSON of every field (sorted keys, no spaces), so any
later edit of the row is detectable against the chain. Sequences are allocated from a counter
row inside the writing transaction, under the node's access lock (and the row lock on
PostgreSQL), so they are gap-free and unique even under concurrent releases.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from ledger_api.access.models import AccessEntry, AccessEntryBase, AccessEntryPublic, Counter
from ledger_api.outbox.models import OutboxItem
from ledger_api.outbox.service import anchoring_state, enqueue, items_by_id

ENTRY_FORMAT = 2  # 2: with chain_block
_COUNTER = "access_sequence"


def entry_document(entry: AccessEntry) -> dict[str, Any]:
    """The canonical content an entry hash covers (also what an auditor recomputes)."""
    return {
        "format": ENTRY_FORMAT, "member": entry.member, "sequence": entry.sequence, "record_id": entry.record_id,
        "record_version": entry.record_version, "patient": entry.patient, "requester": entry.requester,
        "clinician": entry.clinician, "purpose": entry.purpose, "basis": entry.basis,
        "authorization": entry.authorization, "action": entry.action, "chain_block": entry.chain_block,
        "created_at": entry.created_at.astimezone(UTC).isoformat(timespec="microseconds"),
    }  # fmt: skip


def document_hash(document: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON (sorted keys, no spaces) of an entry document: what goes on
    chain, and what an auditor recomputes from an exported line."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def entry_hash(entry: AccessEntry) -> str:
    return document_hash(entry_document(entry))


def _next_sequence(session: Session) -> int:
    """Allocates the next sequence in one statement (UPDATE ... RETURNING takes the row lock).

    The very first allocation creates the counter row with INSERT ... ON CONFLICT DO NOTHING, so
    several API processes starting at once cannot both create it (the loser waits, then counts on).
    """
    statement = update(Counter).where(col(Counter.name) == _COUNTER).values(value=Counter.value + 1)
    statement = statement.returning(Counter.value)
    allocated = session.exec(statement).scalar_one_or_none()  # type: ignore[call-overload]
    if allocated is not None:
        return int(allocated)
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.exec(insert(Counter).values(name=_COUNTER, value=0).on_conflict_do_nothing(index_elements=["name"]))
    return int(session.exec(statement).scalar_one())  # type: ignore[call-overload]


def record_access(session: Session, *, member: str, fields: AccessEntryBase) -> AccessEntry:
    """Adds an entry and its outbox row to the current transaction (caller holds the access lock)."""
    entry = AccessEntry(**fields.model_dump(), sequence=_next_sequence(session), member=member,
                        created_at=datetime.now(UTC), entry_hash="")  # fmt: skip
    entry.entry_hash = entry_hash(entry)
    item = enqueue(session, "access_entry", {
        "sequence": entry.sequence, "entry_hash": entry.entry_hash, "requester": entry.requester,
        "patient": entry.patient, "record_id": entry.record_id, "purpose": entry.purpose, "basis": entry.basis,
        "authorization": entry.authorization,
    })  # fmt: skip
    entry.outbox_id = item.id
    session.add(entry)
    return entry


def to_public(entry: AccessEntry, items: dict[int, OutboxItem]) -> AccessEntryPublic:
    return AccessEntryPublic(**entry.model_dump(exclude={"outbox_id"}), break_glass=entry.basis == "break_glass",
                             anchoring=anchoring_state(items.get(entry.outbox_id or -1)))  # fmt: skip


def list_entries(session: Session, *, patient: str | None = None, after: int = 0, limit: int = 500,
                 newest_first: bool = False) -> list[AccessEntryPublic]:  # fmt: skip
    """Entries after sequence ``after``, oldest first (paging a log), or the newest ``limit`` (a timeline)."""
    query = select(AccessEntry).where(AccessEntry.sequence > after)
    if patient is not None:
        query = query.where(AccessEntry.patient == patient)
    order = col(AccessEntry.sequence).desc() if newest_first else col(AccessEntry.sequence)
    entries = list(session.exec(query.order_by(order).limit(limit)))
    items = items_by_id(session, [e.outbox_id for e in entries if e.outbox_id is not None])
    return [to_public(e, items) for e in entries]


def iter_documents(session: Session, *, patient: str | None = None, batch: int = 1000) -> Iterator[dict[str, Any]]:
    """Every entry's canonical document plus its hash (what an export line holds), in sequence order."""
    after = 0
    while True:
        query = select(AccessEntry).where(AccessEntry.sequence > after)
        if patient is not None:
            query = query.where(AccessEntry.patient == patient)
        rows = list(session.exec(query.order_by(col(AccessEntry.sequence)).limit(batch)))
        if not rows:
            return
        for row in rows:
            yield {**entry_document(row), "entry_hash": row.entry_hash}
        after = rows[-1].sequence


def iter_export(session: Session, *, batch: int = 1000) -> Iterator[str]:
    """Every entry as one JSON line (the canonical document plus its hash), in sequence order."""
    for document in iter_documents(session, batch=batch):
        yield json.dumps(document, sort_keys=True) + "\n"
