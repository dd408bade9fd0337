"""What a member keeps of the successions it took part in: never on chain, never sent to another member.

A minor's date of birth (attested at this member's desk from the child's documents) stays here; the chain holds
only the first day the child may claim the account. An approval of a recovery records who checked the patient's
identity in person (a pseudonymous staff id), for this member's own audit of its desk.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Field, SQLModel


class MinorEnrolment(SQLModel, table=True):
    __tablename__ = "minor_enrolments"
    account: str = Field(primary_key=True, max_length=42)
    guardian: str = Field(max_length=42)
    date_of_birth: date
    #: the first day the child may claim the account (what the chain holds)
    minor_until: date
    identity_checked_by: str = Field(max_length=64)
    enrolled_at: datetime
    tx_hash: str = Field(max_length=66)


class RecoveryApprovalRecord(SQLModel, table=True):
    __tablename__ = "recovery_approvals"
    id: int | None = Field(default=None, primary_key=True)
    account: str = Field(index=True, max_length=42)
    new_key: str = Field(max_length=42)
    round: int
    identity_checked_by: str = Field(max_length=64)
    approved_at: datetime
    tx_hash: str = Field(max_length=66)
