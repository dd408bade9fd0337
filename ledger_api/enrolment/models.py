"""The short codes a patient shows at the registration desk, and what the link routes take and give.

Links themselves are ``auth.patient_numbers.PatientLink`` (every route resolves ``mrn:`` through them).
Both live only in this member's database: never on chain, never sent to another member.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from pydantic import Field as PydanticField
from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from ledger_api.auth.patient_numbers import MRN_PATTERN
from ledger_api.consents.schemas import Deadline, Signature

ID_CARD_PATTERN = r"^[0-9]{17}[0-9Xx]$"


class LinkOffer(SQLModel, table=True):
    """A signed link statement waiting for the hospital's desk to type its short code (stored hashed)."""

    __tablename__ = "patient_link_offers"
    code_hash: str = Field(primary_key=True, max_length=64)
    patient: str = Field(index=True, max_length=42)
    statement: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    expires_at: datetime = Field(index=True)


class LinkStatementIn(BaseModel):
    """A patient-signed EIP-712 ``PatientNumberLink(address patient,address hospital,string mrn,bool linked,
    uint256 issuedAt,uint256 deadline)`` under the consortium's consent domain (GET
    /v1/patients/{patient}/signing-domain): "my account is patient ``mrn`` at ``hospital``"; ``linked``
    false, with ``mrn`` empty: "drop my link at ``hospital``"."""

    patient: str = PydanticField(pattern=r"^0x[0-9a-fA-F]{40}$")
    hospital: str = PydanticField(pattern=r"^0x[0-9a-fA-F]{40}$")
    mrn: str = PydanticField(max_length=64, pattern=rf"^({MRN_PATTERN})?$")
    linked: bool
    issued_at: int = PydanticField(ge=0, lt=2**63, description="unix milliseconds; later than the last applied")
    deadline: Deadline
    signature: Signature


class LinkIn(BaseModel):
    """What the hospital's system hands its node after the desk scanned the patient's code: the statement
    the QR carries, or the short code typed from the screen; optionally the ID card number it saw."""

    statement: LinkStatementIn | None = None
    code: str | None = PydanticField(default=None, pattern=r"^[0-9A-Za-z]{4}-?[0-9A-Za-z]{4}$")
    id_card_number: str | None = PydanticField(
        default=None, pattern=ID_CARD_PATTERN, description="an 18-character resident ID; kept only as a keyed hash"
    )


class IdCardLookupIn(BaseModel):
    id_card_number: str = PydanticField(pattern=ID_CARD_PATTERN)


class LinkView(BaseModel):
    """A link as its hospital holds it. ``mrn`` is null when the patient asks through another member's node:
    that member passes the answer on and must not learn this hospital's number (the patient knows it)."""

    patient: str
    hospital: str
    hospital_name: str
    mrn: str | None
    linked_at: datetime
    id_card_on_file: bool


class LinkRemoved(BaseModel):
    patient: str
    hospital: str
    removed_at: datetime


class LinkOfferView(BaseModel):
    """The short code the desk types (the QR carries the whole statement instead)."""

    code: str
    expires_at: datetime


class MemberLinks(BaseModel):
    """One member's answer in the patient's overview of their links."""

    member: str
    name: str
    status: str
    links: list[LinkView] = []


class PatientLinks(BaseModel):
    patient: str
    members: list[MemberLinks]
