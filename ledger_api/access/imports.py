"""The recipient's side of a disclosure: one row per record this node fetched from another member.

The custodian logs the release in its access log (and anchors it on chain); the recipient keeps this
matching import entry, naming the custodian's log entry (custodian account and sequence), so an
auditor pairs the two AuditEvents (IHE BALP PrivacyDisclosure at the source and at the recipient).
Nothing here goes on chain: the custodian's anchored entry is the proof; this is the recipient's record.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, UniqueConstraint
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select

from ledger_api.core.db import WriteTurns, session_scope


class ImportEntry(SQLModel, table=True):
    __tablename__ = "import_log"
    __table_args__ = (UniqueConstraint("custodian", "custodian_sequence"),)
    id: int | None = Field(default=None, primary_key=True)
    custodian: str = Field(max_length=42)
    custodian_sequence: int = Field(sa_type=BigInteger)
    record_id: str = Field(max_length=64)
    record_version: int
    patient: str = Field(index=True, max_length=42)
    clinician: str = Field(max_length=128)
    purpose: int
    basis: str = Field(max_length=16)
    content_hash: str = Field(max_length=64)
    created_at: datetime


def record_import(engine: Engine, turns: WriteTurns, **fields: Any) -> None:
    """Keeps one import entry (a repeated custodian entry is kept once: the unique constraint holds it)."""
    with turns.turn(), session_scope(engine) as session:
        exists = session.exec(
            select(ImportEntry.id).where(
                ImportEntry.custodian == fields["custodian"],
                ImportEntry.custodian_sequence == fields["custodian_sequence"],
            )
        ).first()
        if exists is None:
            session.add(ImportEntry(**fields, created_at=datetime.now(UTC)))


def iter_imports(session: Session, *, patient: str | None = None) -> Iterator[ImportEntry]:
    query = select(ImportEntry).order_by(col(ImportEntry.id))
    if patient is not None:
        query = query.where(ImportEntry.patient == patient)
    yield from session.exec(query.execution_options(yield_per=500))
