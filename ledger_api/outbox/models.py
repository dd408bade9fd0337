"""The transactional outbox: chain writes recorded with the data they anchor, sent later.

A row is written in the same database transaction as the record, access entry or consent it
anchors, so a crash can never leave one without the other. The worker moves a row through
``pending -> sent -> confirmed`` (or ``failed`` after too many attempts), storing the signed
transaction before broadcasting it, so a retry after a crash re-sends the same transaction
instead of making a second one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel


class OutboxItem(SQLModel, table=True):
    __tablename__ = "outbox"
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32, index=True)
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    state: str = Field(default="pending", max_length=16, index=True)
    attempts: int = 0
    next_attempt_at: datetime
    created_at: datetime
    tx_hash: str | None = Field(default=None, max_length=66)
    raw_tx: str | None = None
    nonce: int | None = None
    block_number: int | None = None
    confirmed_at: datetime | None = None
    last_error: str | None = Field(default=None, max_length=500)


class OutboxItemPublic(SQLModel):
    id: int
    kind: str
    state: str
    attempts: int
    tx_hash: str | None
    block_number: int | None
    created_at: datetime
    confirmed_at: datetime | None
    last_error: str | None
    #: a relayed grant, once confirmed: the id of the consent it created (decimal)
    consent_id: str | None = None
