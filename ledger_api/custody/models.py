"""Incoming handovers a member agreed to: the only custody another member may push to this node."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from pydantic import Field as PydanticField
from sqlalchemy import BigInteger
from sqlmodel import Field, SQLModel


class IncomingAgreementBase(SQLModel):
    """What this member's own system agreed to take from a leaving member."""

    predecessor: str = Field(max_length=42, index=True)
    max_records: int
    max_bytes: int = Field(sa_type=BigInteger)


class IncomingAgreement(IncomingAgreementBase, table=True):
    """One agreement, with what has arrived under it so far (quotas are checked against these)."""

    __tablename__ = "custody_incoming_agreements"
    id: int | None = Field(default=None, primary_key=True)
    records_received: int = 0
    bytes_received: int = Field(default=0, sa_type=BigInteger)
    created_at: datetime
    expires_at: datetime
    withdrawn_at: datetime | None = None


class IncomingAgreementIn(BaseModel):
    """The request: from whom, how much at most, for how long."""

    predecessor: str = PydanticField(pattern=r"^0x[0-9a-fA-F]{40}$", description="the member handing records over")
    max_records: int = PydanticField(ge=1, le=10_000_000, description="records it may push at most")
    max_bytes: int = PydanticField(ge=1, le=2**50, description="ciphertext bytes it may push at most")
    valid_for_s: int = PydanticField(7 * 86_400, ge=60, le=90 * 86_400, description="how long the agreement stands")


class IncomingAgreementPublic(IncomingAgreementBase):
    """An agreement as the API shows it."""

    id: int
    records_received: int
    bytes_received: int
    created_at: datetime
    expires_at: datetime
    withdrawn_at: datetime | None
    active: bool
