"""Subscriptions (who wants which events, at which webhook) and the notifications owed to them.

A notification row is created for each (subscription, event) once, in the same transaction that
advances the chain cursor, so every event is matched exactly once even across restarts; its
delivery state then moves ``pending -> delivered`` (or ``failed`` after the last retry).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import JSON, BigInteger, Column, UniqueConstraint
from sqlmodel import Field, SQLModel


class Subscription(SQLModel, table=True):
    __tablename__ = "subscriptions"
    id: str = Field(primary_key=True, max_length=32)
    subscriber: str = Field(index=True, max_length=42)
    role: str = Field(max_length=16)  # patient | auditor
    #: the patient whose events are wanted; None: every patient (auditors: break-glass and reviews)
    patient: str | None = Field(default=None, index=True, max_length=42)
    events: str = Field(max_length=128)  # comma-separated event types
    url: str = Field(max_length=2048)
    #: the HMAC key of the payload signatures; shown to the subscriber once, never logged
    secret: str = Field(max_length=64)
    #: events from this block on (nothing that happened before the subscription)
    from_block: int = Field(sa_type=BigInteger)
    created_at: datetime
    active: bool = True


class Notification(SQLModel, table=True):
    __tablename__ = "notifications"
    __table_args__ = (UniqueConstraint("subscription_id", "event_id"),)
    id: int | None = Field(default=None, primary_key=True)
    subscription_id: str = Field(foreign_key="subscriptions.id", index=True, max_length=32)
    event_id: str = Field(max_length=160)
    event_type: str = Field(max_length=16)
    patient: str = Field(index=True, max_length=42)
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    state: str = Field(default="pending", max_length=16, index=True)
    attempts: int = 0
    next_attempt_at: datetime
    created_at: datetime
    delivered_at: datetime | None = None
    last_status: int | None = None
    last_error: str | None = Field(default=None, max_length=200)


class SubscriptionPublic(BaseModel):
    id: str
    subscriber: str
    role: str
    patient: str | None
    events: list[str]
    url: str
    from_block: int
    created_at: datetime
    active: bool


class SubscriptionCreated(SubscriptionPublic):
    #: returned once, at creation: verify ``X-MedLedger-Signature`` with it
    secret: str


class NotificationPublic(BaseModel):
    id: int
    subscription_id: str
    event_id: str
    event_type: str
    patient: str
    state: str
    attempts: int
    created_at: datetime
    delivered_at: datetime | None
    last_status: int | None
    last_error: str | None
    payload: dict[str, Any]
