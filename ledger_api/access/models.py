"""The local access log: one entry per release (or erasure) of a record, numbered per member.

Only each entry's hash goes on chain (AccessTrail) through the outbox; the entry itself, naming
the patient, the record and its category, the reader, the pseudonymous clinician and the grounds,
stays here. The hash covers every field and a random nonce, so an auditor can prove the row was not
edited after anchoring, and nobody can confirm a guessed entry against the chain.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger
from sqlmodel import Field, SQLModel

from ledger_api.vocabulary import Purpose


class AccessEntryBase(SQLModel):
    record_id: str = Field(index=True, max_length=64)
    record_version: int
    #: the record's category (the consent had to cover it); None only in entries from before format 3
    category: int | None = Field(default=None, ge=0, le=15)
    patient: str = Field(index=True, max_length=42)
    requester: str = Field(max_length=42)
    clinician: str = Field(max_length=128)
    purpose: int
    basis: str = Field(max_length=16)  # consent | break_glass | custodian | patient
    authorization: str = Field(max_length=66)  # consent id / break-glass id (hex), or "" for custodian
    #: read | erase | handover | self_access (the patient's own copy) | restrict | unrestrict | hide | unhide
    action: str = Field(max_length=16)
    #: the block the authorisation was read at (an auditor re-checks the consent at that very block)
    chain_block: int | None = Field(default=None, sa_type=BigInteger)

    @classmethod
    def custodian_action(
        cls,
        *,
        record_id: str,
        version: int,
        category: int,
        patient: str,
        requester: str,
        action: str,
        purpose: int,
        clinician: str | None = None,
    ) -> AccessEntryBase:
        """An entry for what the custodian itself does with a record (erase it, hand it over): its own
        grounds, no consent to name, and the action as the clinician field says it (or ``clinician``: why,
        for an erasure the custodian did not do at a request: ``retention-ended``, ``legal-order``)."""
        clinician = clinician or {"erase": "erasure", "handover": "custody-handover"}[action]
        return cls(
            record_id=record_id,
            record_version=version,
            category=category,
            patient=patient,
            requester=requester,
            clinician=clinician,
            purpose=purpose,
            basis="custodian",
            authorization="",
            action=action,
        )

    @classmethod
    def patient_action(
        cls,
        *,
        record_id: str,
        version: int,
        category: int,
        patient: str,
        requester: str,
        action: str,
        proof: str = "",
        chain_block: int | None = None,
    ) -> AccessEntryBase:
        """An entry for what the patient (or a delegate, ``requester``) does with their own record: take a
        copy, restrict it, lift the restriction. ``proof``: the digest of the patient's signed request;
        ``chain_block``: the block at which a delegate's standing was read (the auditor judges it there)."""
        return cls(
            record_id=record_id,
            record_version=version,
            category=category,
            patient=patient,
            requester=requester,
            clinician="patient",
            purpose=int(Purpose.PATIENT_REQUEST),
            basis="patient",
            authorization=proof,
            action=action,
            chain_block=chain_block,
        )


class AccessEntry(AccessEntryBase, table=True):
    __tablename__ = "access_log"
    sequence: int = Field(primary_key=True)
    member: str = Field(max_length=42)
    created_at: datetime
    entry_hash: str = Field(max_length=64, unique=True)
    outbox_id: int | None = Field(default=None, foreign_key="outbox.id")
    #: 16 random bytes (hex) the hash covers, so an entry cannot be confirmed by hashing guesses
    nonce: str = Field(default="", max_length=32, sa_column_kwargs={"server_default": ""})


class AccessEntryPublic(AccessEntryBase):
    sequence: int
    member: str
    created_at: datetime
    entry_hash: str
    break_glass: bool
    anchoring: str


class Counter(SQLModel, table=True):
    """Monotonic counters (the access-log sequence) allocated inside transactions."""

    __tablename__ = "counters"
    name: str = Field(primary_key=True, max_length=32)
    value: int = 0
