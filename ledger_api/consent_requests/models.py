"""A consent request as the hospital that raised it keeps it, and what its routes take and give."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel
from pydantic import Field as PydanticField
from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from ledger_api.auth.patient_numbers import PATIENT_REF_DESCRIPTION, PATIENT_REF_PATTERN
from ledger_api.consents.schemas import Deadline, Signature
from ledger_api.vocabulary import CategoryName, PurposeName

RequestState = Literal["requested", "granted", "denied", "expired", "withdrawn"]


class ConsentRequest(SQLModel, table=True):
    """Kept by the requesting hospital only (see ``consent_requests.service`` for why)."""

    __tablename__ = "consent_requests"
    id: str = Field(primary_key=True, max_length=32)
    patient: str = Field(index=True, max_length=42)
    purposes: int
    categories: int
    care_from: date | None = None
    care_to: date | None = None
    access_from: date
    access_days: int
    reason: str = Field(max_length=500)
    #: the custodians whose records are wanted (empty: wherever they are)
    custodians: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    #: the staff member who raised it (the hospital's own id; never sent to another member)
    raised_by: str = Field(max_length=128)
    state: str = Field(index=True, max_length=16)
    created_at: datetime
    #: the patient answers before this, or the request expires
    expires_at: datetime
    decided_at: datetime | None = None
    #: the grant that answered it (decimal), once on chain
    consent_id: str | None = Field(default=None, max_length=78)


class RequestIn(BaseModel):
    """What the hospital asks the patient for."""

    patient: str = PydanticField(pattern=PATIENT_REF_PATTERN, description=PATIENT_REF_DESCRIPTION)
    purposes: list[PurposeName] = PydanticField(min_length=1, max_length=8)
    categories: list[CategoryName] = PydanticField(min_length=1, max_length=16)
    care_from: date | None = PydanticField(
        default=None, description="the first day of the care whose records are wanted"
    )
    care_to: date | None = PydanticField(default=None, description="the last day of that care")
    access_from: date | None = PydanticField(default=None, description="when access should start (default today)")
    access_days: int = PydanticField(ge=1, le=3650, description="how long access is wanted")
    reason: str = PydanticField(min_length=1, max_length=500, description="why, in words the patient will read")
    custodians: list[str] = PydanticField(
        default_factory=list, max_length=16, description="the members whose records are wanted (default: any)"
    )
    raised_by: str = PydanticField(min_length=1, max_length=128, pattern=r"^[\w.@-]+$", description="staff id")


class RequestView(BaseModel):
    """A consent request and where it stands, with the times of its states."""

    id: str
    requester: str
    requester_name: str
    patient: str
    purposes: list[str]
    categories: list[str]
    care_from: date | None
    care_to: date | None
    access_days: int
    access_from: date
    reason: str
    custodians: list[str]
    state: RequestState
    created_at: datetime
    expires_at: datetime
    decided_at: datetime | None
    consent_id: str | None
    #: what the portal pre-fills the grant with (the patient may narrow it before signing)
    suggested_grant: dict[str, Any]


class RefusalIn(BaseModel):
    """The patient's signed EIP-712 ``ConsentRequestRefusal(address patient,address requester,bytes16
    requestId,uint256 deadline)`` under the consortium's consent domain."""

    patient: str = PydanticField(pattern=r"^0x[0-9a-fA-F]{40}$")
    requester: str = PydanticField(pattern=r"^0x[0-9a-fA-F]{40}$")
    deadline: Deadline
    signature: Signature


class MemberRequests(BaseModel):
    member: str
    name: str
    status: str
    requests: list[RequestView] = []


class PatientRequests(BaseModel):
    """The signed-in patient's requests from every member (each member answers for its own)."""

    patient: str
    members: list[MemberRequests]
    requests: list[RequestView]
