"""Writes access-log entries with their per-member sequence and queues their hashes for the chain.

The entry hash is SHA-256 over the canonical JSON of every field (sorted keys, no spaces), so any
later edit of the row is detectable against the chain. Format 3 adds the record's category and a
random nonce: the hash, the only thing on chain, then hides the entry from anyone guessing it.
Sequences are allocated from a counter row inside the writing transaction, under the node's access
lock (and the row lock on PostgreSQL), so they are gap-free and unique even under concurrent releases.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, insert, or_, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlmodel import Session, col, select

from ledger_api.access.anchoring import AccessEntryAnchor
from ledger_api.access.models import AccessEntry, AccessEntryBase, AccessEntryPublic, Counter
from ledger_api.outbox.models import OutboxItem
from ledger_api.outbox.service import anchoring_state, enqueue_rows, items_by_id

ENTRY_FORMAT = 3  # 2: with chain_block; 3: with category and nonce (only the hash on chain)
NONCE_BYTES = 16
_COUNTER = "access_sequence"


#: The fields a format-3 entry hash covers beside ``DOCUMENT_FIELDS``.
PRIVATE_FIELDS = ("category", "nonce")
#: The fields an entry hash covers, beside ``format`` and ``created_at`` (see ``document_of``).
DOCUMENT_FIELDS = (
    "member",
    "sequence",
    "record_id",
    "record_version",
    "patient",
    "requester",
    "clinician",
    "purpose",
    "basis",
    "authorization",
    "action",
    "chain_block",
)


def document_of(values: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical content an entry hash covers (also what an auditor recomputes). An entry written
    before format 3 (no nonce) keeps the format its hash was taken in."""
    if values.get("nonce"):
        document = {"format": ENTRY_FORMAT, **{name: values[name] for name in (*DOCUMENT_FIELDS, *PRIVATE_FIELDS)}}
    else:
        document = {"format": 2, **{name: values[name] for name in DOCUMENT_FIELDS}}
    document["created_at"] = values["created_at"].astimezone(UTC).isoformat(timespec="microseconds")
    return document


def entry_document(entry: AccessEntry) -> dict[str, Any]:
    return document_of({name: getattr(entry, name) for name in (*DOCUMENT_FIELDS, *PRIVATE_FIELDS, "created_at")})


def document_hash(document: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON (sorted keys, no spaces) of an entry document: what goes on
    chain, and what an auditor recomputes from an exported line."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def entry_hash(entry: AccessEntry) -> str:
    return document_hash(entry_document(entry))


_COUNTERS = Counter.__table__  # type: ignore[attr-defined]
_ALLOCATE = (
    update(_COUNTERS)
    .where(_COUNTERS.c.name == _COUNTER)
    .values(value=_COUNTERS.c.value + bindparam("n"))
    .returning(_COUNTERS.c.value)
)
_INSERT_ENTRIES = insert(AccessEntry.__table__)  # type: ignore[attr-defined]


def _allocate_sequences(connection: Connection, count: int) -> range:
    """Allocates ``count`` consecutive sequences in one statement (UPDATE ... RETURNING takes the row lock).

    The very first allocation creates the counter row with INSERT ... ON CONFLICT DO NOTHING, so
    several API processes starting at once cannot both create it (the loser waits, then counts on).
    """
    last = connection.execute(_ALLOCATE, {"n": count}).scalar_one_or_none()
    if last is None:
        insert_ = postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert
        create = insert_(_COUNTERS).values(name=_COUNTER, value=0).on_conflict_do_nothing(index_elements=["name"])
        connection.execute(create)
        last = connection.execute(_ALLOCATE, {"n": count}).scalar_one()
    return range(int(last) - count + 1, int(last) + 1)


def record_access(session: Session, *, member: str, fields: AccessEntryBase) -> AccessEntry:
    """Adds an entry and its outbox row to the current transaction (caller holds the access lock)."""
    return record_accesses(session, member=member, entries=[fields])[0]


def record_accesses(session: Session, *, member: str, entries: list[AccessEntryBase]) -> list[AccessEntry]:
    """Adds entries (numbered in list order) and their outbox rows to the current transaction
    (caller holds the access lock)."""
    rows = insert_accesses(session.connection(), member=member, entries=[e.model_dump() for e in entries])
    return [AccessEntry(**values) for values in rows]


def insert_accesses(connection: Connection, *, member: str, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Inserts entries (``AccessEntryBase`` fields, numbered in list order) and their outbox rows;
    returns each entry's stored column values.

    Plain multi-row statements, not ORM objects, and nothing else: this runs for every release
    inside the database's write turn, so whatever can be done before or after it (validating the
    fields, building the entry objects) is done there (see ``access.writer``).
    """
    moment = datetime.now(UTC)
    rows = []
    for sequence, fields in zip(_allocate_sequences(connection, len(entries)), entries, strict=True):
        values = {**fields, "sequence": sequence, "member": member, "created_at": moment}
        values["nonce"] = os.urandom(NONCE_BYTES).hex()
        values["entry_hash"] = document_hash(document_of(values))
        rows.append(values)
    outbox_ids = enqueue_rows(
        connection, [AccessEntryAnchor(sequence=v["sequence"], entry_hash=v["entry_hash"]) for v in rows]
    )
    for values, outbox_id in zip(rows, outbox_ids, strict=True):
        values["outbox_id"] = outbox_id
    connection.execute(_INSERT_ENTRIES, rows)
    return rows


def to_public(entry: AccessEntry, items: dict[int, OutboxItem]) -> AccessEntryPublic:
    return AccessEntryPublic(
        **entry.model_dump(exclude={"outbox_id"}),
        break_glass=entry.basis == "break_glass",
        anchoring=anchoring_state(items.get(entry.outbox_id or -1)),
    )


def list_entries(
    session: Session,
    *,
    patient: str | None = None,
    after: int = 0,
    limit: int = 500,
    newest_first: bool = False,
    unseen_categories: int = 0,
) -> list[AccessEntryPublic]:
    """Entries after sequence ``after``, oldest first (paging a log), or the newest ``limit`` (a timeline);
    none about records of the ``unseen_categories`` (a bit set: those kept from a delegate)."""
    query = select(AccessEntry).where(AccessEntry.sequence > after)
    if patient is not None:
        query = query.where(AccessEntry.patient == patient)
    if unseen_categories:
        unseen = [c for c in range(16) if (unseen_categories >> c) & 1]
        query = query.where(or_(col(AccessEntry.category).is_(None), col(AccessEntry.category).not_in(unseen)))
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
