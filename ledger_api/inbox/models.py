"""How far a patient has read their inbox at this node, and what the inbox shows."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel
from sqlmodel import Field, SQLModel

ItemKind = Literal["consent_request", "new_record", "access", "break_glass", "review", "grant", "revocation", "key"]
ITEM_KINDS: tuple[ItemKind, ...] = (
    "consent_request",
    "new_record",
    "access",
    "break_glass",
    "review",
    "grant",
    "revocation",
    "key",
)


class InboxMark(SQLModel, table=True):
    """Everything up to ``seen_until`` is read (kept at the node the patient reads their inbox at)."""

    __tablename__ = "inbox_marks"
    patient: str = Field(primary_key=True, max_length=42)
    seen_until: datetime


class InboxItem(BaseModel):
    """One thing that happened. ``id`` is stable across reads; ``member`` is the hospital it is about."""

    id: str
    kind: ItemKind
    at: datetime
    member: str | None
    member_name: str | None
    unread: bool
    #: open consent requests wait for an answer, however long ago they came
    needs_answer: bool = False
    detail: dict[str, Any]


class MemberStatus(BaseModel):
    member: str
    name: str
    status: str
    detail: str | None = None


class Inbox(BaseModel):
    patient: str
    seen_until: datetime | None
    unread: dict[str, int]
    unread_total: int
    #: members that did not answer: the inbox may be missing their part
    incomplete: list[MemberStatus]
    items: list[InboxItem]


class SeenIn(BaseModel):
    """Marks everything up to ``until`` read (default: now)."""

    until: datetime | None = None
