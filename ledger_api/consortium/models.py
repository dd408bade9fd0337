"""Break-glass declarations made by this member: reason and justification stay here; on chain only a
salted commitment to them (``chain.commitments.statement_commitment``), which the salt kept here opens."""

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
    statement_salt: str = Field(default="", max_length=64, sa_column_kwargs={"server_default": ""})
    declared_at: datetime
    expires_at: datetime
    tx_hash: str = Field(max_length=66)
