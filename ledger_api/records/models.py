"""Records held by this member (custodian), their versions and wrapped data keys.

Plaintext never reaches the database: versions point at ciphertext blobs, and the data key is
stored only wrapped (HPKE) for the custodian's own key. Erasure deletes the wrapped keys.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import BigInteger
from sqlmodel import Field, SQLModel, UniqueConstraint

from ledger_api.chain.commitments import record_subject
from ledger_api.chain.days import day_number


class Custody(StrEnum):
    """Where a record stands between custodians: ``incoming`` (received, not yet ours on chain),
    ``held`` (ours), ``handing`` (pushed to a successor, transfer on its way), ``transferred`` (gone)."""

    INCOMING = "incoming"
    HELD = "held"
    HANDING = "handing"
    TRANSFERRED = "transferred"


class RecordKind(StrEnum):
    """What kind of care a record comes from: it sets how long the law says it must be kept."""

    OUTPATIENT = "outpatient"
    INPATIENT = "inpatient"
    OTHER = "other"


class HandoverState(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class RecordBase(SQLModel):
    """Metadata anyone allowed to list a patient's records may see."""

    patient: str = Field(index=True, max_length=42)
    category: int = Field(ge=0, le=15)
    media_type: str = Field(max_length=127)
    fhir_resource_type: str | None = Field(default=None, max_length=64)


class Record(RecordBase, table=True):
    """One record held by this node (the custodian)."""

    __tablename__ = "records"
    id: str = Field(primary_key=True, max_length=64)  # hex of the random 32-byte record id
    custodian: str = Field(max_length=42)
    latest_version: int = 0
    created_at: datetime
    erased_at: datetime | None = None
    #: held (ours) | incoming (handed to us; ours once the chain says so) | transferred (handed away)
    custody: str = Field(default=Custody.HELD, max_length=16, sa_column_kwargs={"server_default": Custody.HELD.value})
    #: the member it came from (incoming) or went to (transferred)
    custody_counterpart: str | None = Field(default=None, max_length=42)
    #: hex of the random salt of the record's subject commitment on chain (``chain.commitments``): with
    #: patient and category it opens the anchor; given to the patient, their delegates and auditors
    subject_salt: str = Field(default="", max_length=64, sa_column_kwargs={"server_default": ""})
    #: outpatient | inpatient | other, and the date of the last encounter it records (given at upload):
    #: together they set ``retention_until``, before which no one may destroy it (records from before
    #: retention was tracked have none, and are never destroyed by the retention job)
    record_kind: str = Field(default=RecordKind.OTHER, max_length=16, sa_column_kwargs={"server_default": "other"})
    last_encounter: date | None = None
    retention_until: date | None = Field(default=None, index=True)
    #: the patient restricted this record (an erasure request within retention): released to nobody but
    #: the patient, this custodian for legal purposes, and a declared break-glass
    restricted: bool = Field(default=False, sa_column_kwargs={"server_default": "0"})
    restricted_since: datetime | None = None
    #: ``issuedAt`` (unix ms) of the last signed restriction change applied: an older signature is a replay
    restriction_issued_at: int = Field(default=0, sa_type=BigInteger, sa_column_kwargs={"server_default": "0"})
    #: the day of the care the record is about (version 1's encounter date), bound into its anchor's
    #: commitment: a consent limited to a range of days of care releases it only if the day lies inside
    encounter_date: date | None = None
    #: the patient hid this record from every consent: released under a consent to nobody (the patient,
    #: this custodian's own care and a declared break-glass still reach it)
    hidden: bool = Field(default=False, sa_column_kwargs={"server_default": "0"})
    hidden_since: datetime | None = None
    hiding_issued_at: int = Field(default=0, sa_type=BigInteger, sa_column_kwargs={"server_default": "0"})

    def encounter_day(self) -> int:
        """The day of care as the chain counts it (``chain.days``; 0 when not stated)."""
        return day_number(self.encounter_date)

    def subject(self) -> bytes:
        """The commitment this record's anchor carries."""
        return record_subject(
            bytes.fromhex(self.id), self.patient, self.category, bytes.fromhex(self.subject_salt), self.encounter_day()
        )


class RecordVersion(SQLModel, table=True):
    """One encrypted version; the ciphertext lives in the blob store under ``blob_name``."""

    __tablename__ = "record_versions"
    __table_args__ = (UniqueConstraint("record_id", "version"),)
    id: int | None = Field(default=None, primary_key=True)
    record_id: str = Field(foreign_key="records.id", index=True, max_length=64)
    version: int
    content_hash: str = Field(max_length=64)
    plaintext_size: int
    ciphertext_size: int
    blob_name: str = Field(max_length=200)
    created_at: datetime
    outbox_id: int | None = Field(default=None, foreign_key="outbox.id")
    #: the custodian named in the encryption context, when another member sealed it (a handover)
    sealed_by: str | None = Field(default=None, max_length=42)


class WrappedKey(SQLModel, table=True):
    """A version's data key wrapped for one recipient key (the custodian's own)."""

    __tablename__ = "wrapped_keys"
    id: int | None = Field(default=None, primary_key=True)
    record_id: str = Field(foreign_key="records.id", index=True, max_length=64)
    version: int
    recipient: str = Field(max_length=42)
    key_id: str = Field(max_length=32)
    wrapped: bytes


class RecordPublic(RecordBase):
    """What the API shows of a record: metadata only, never content."""

    id: str
    custodian: str
    latest_version: int
    created_at: datetime
    erased: bool
    custody: str = Custody.HELD.value
    #: the salt that opens the record's anchor (``subjectCommitment``) with its patient and category; shown
    #: to the patient, their delegates and the custodian's own system, never to other members
    subject_salt: str | None = None
    record_kind: str = RecordKind.OTHER.value
    last_encounter: date | None = None
    #: the day until which the law requires the record kept: no erasure before it (none: kept indefinitely)
    retention_until: date | None = None
    restricted: bool = False
    restricted_since: datetime | None = None
    #: the day of care the record is about (bound into its anchor); consents limited to days of care check it
    encounter_date: date | None = None
    #: the patient hid it from every consent (break-glass and the custodian's own care still reach it)
    hidden: bool = False
    hidden_since: datetime | None = None
    versions: list[RecordVersionPublic] = []


class RecordVersionPublic(SQLModel):
    version: int
    content_hash: str
    plaintext_size: int
    ciphertext_size: int
    created_at: datetime
    anchoring: str


class CustodyHandover(SQLModel, table=True):
    """A leaving member's handover of every record it holds to a successor, and how far it got."""

    __tablename__ = "custody_handovers"
    id: int | None = Field(default=None, primary_key=True)
    successor: str = Field(max_length=42)
    state: str = Field(default=HandoverState.RUNNING, max_length=16)
    records_total: int = 0
    records_sent: int = 0
    records_transferred: int = 0
    created_at: datetime
    finished_at: datetime | None = None
    last_error: str | None = Field(default=None, max_length=500)


class CustodyHandoverPublic(SQLModel):
    id: int
    successor: str
    state: str
    records_total: int
    records_sent: int
    records_transferred: int
    created_at: datetime
    finished_at: datetime | None
    last_error: str | None


class ErasureOrderState(StrEnum):
    PENDING = "pending"
    EXECUTED = "executed"


class ErasureOrderBase(SQLModel):
    """A legal order (a court's or a regulator's) to destroy a record before its retention end."""

    reference: str = Field(min_length=1, max_length=200)
    authority: str = Field(min_length=1, max_length=200)
    issued_on: date
    #: the staff member who files it (pseudonymous id, as clinicians are named in the trail)
    filed_by: str = Field(min_length=1, max_length=128, regex=r"^[A-Za-z0-9._:@-]+$")


class ErasureOrderCreate(ErasureOrderBase):
    """What the custodian's system files."""


class ErasureOrder(ErasureOrderBase, table=True):
    """A filed order, its two approvals (a second person at the custodian, an auditor), and its execution."""

    __tablename__ = "erasure_orders"
    id: int | None = Field(default=None, primary_key=True)
    record_id: str = Field(foreign_key="records.id", index=True, max_length=64)
    state: str = Field(default=ErasureOrderState.PENDING, max_length=16)
    created_at: datetime
    countersigned_by: str | None = Field(default=None, max_length=128)
    countersigner_account: str | None = Field(default=None, max_length=42)
    countersignature: str | None = Field(default=None, max_length=132)
    approved_by: str | None = Field(default=None, max_length=42)
    #: the auditor's EIP-712 ``LegalErasure`` signature (r || s || v, hex), kept as evidence like the officer's
    approval_signature: str | None = Field(default=None, max_length=132)
    executed_at: datetime | None = None


class ErasureOrderPublic(ErasureOrderBase):
    """An order as the custodian and auditors see it. ``digest`` is what the officer and the auditor sign
    (EIP-712 ``LegalErasure``); their signatures (r || s || v, hex) are here, so anyone holding the order
    can check who approved it without trusting the custodian's word."""

    id: int
    record_id: str
    state: str
    created_at: datetime
    digest: str
    countersigned_by: str | None
    countersigner_account: str | None
    countersignature: str | None
    approved_by: str | None
    approval_signature: str | None
    executed_at: datetime | None


class PatientRequest(SQLModel, table=True):
    """A patient's (or delegate's) signed change of one record's restriction or hiding, as this custodian
    received it: the evidence behind the trail entry ``sequence`` that records the change (whose
    ``authorization`` is the keccak-256 of ``signature``). Exported to auditors with the record manifest, so
    a lift the patient never signed cannot pass as theirs."""

    __tablename__ = "patient_requests"
    id: int | None = Field(default=None, primary_key=True)
    record_id: str = Field(foreign_key="records.id", index=True, max_length=64)
    #: the EIP-712 primary type signed: ``RecordRestriction`` or ``RecordHiding``
    kind: str = Field(max_length=32)
    patient: str = Field(max_length=42)
    #: restricted (or hidden) after the change
    value: bool
    issued_at: int = Field(sa_type=BigInteger)
    deadline: int = Field(sa_type=BigInteger)
    #: r || s || v, hex
    signature: str = Field(max_length=130)
    sequence: int = Field(sa_type=BigInteger)
