"""Break-glass declarations made by this member: the justification text stays here, its hash on chain."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel


class BreakGlassDeclaration(SQLModel, table=True):
    __tablename__ = "break_glass"
    id: int = Field(primary_key=True)  # the on-chain break-glass id
    patient: str = Field(index=True, max_length=42)
    clinician: str = Field(max_length=128)
    reason_code: int
    justification: str = Field(max_length=4000)
    justification_hash: str = Field(max_length=64)
    declared_at: datetime
    expires_at: datetime
    tx_hash: str = Field(max_length=66)
