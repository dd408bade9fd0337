"""A patient's restriction of one record (an erasure request where the law says the record must be kept),
and the patient's hiding of one record from every consent.

PIPL Art. 47: where a legal retention period has not ended, a request to delete means stopping all
processing but storage and security. So the record stays, and from the restriction on it is released
to nobody but the patient, this custodian for legal purposes (purpose ``legal``), and a declared
break-glass (life and health, PIPL Art. 13(4)); consents are not touched, only overridden. The patient
can lift it.

Where it lives: here (``records.restricted``, which every release reads with the record, so it holds
from the moment the request is accepted) and on chain (``RecordRegistry.setRestriction``, sent by this
custodian through the outbox), which says only that the record is restricted, not whose it is: it
follows the record through a custody handover and lets auditors judge every release after it. The
patient's own signed request (EIP-712 ``RecordRestriction``) stays with the custodian; its digest is the
authorisation of the access-trail entry that records the change. A restriction of all the patient's
records is the patient's own statement on chain instead (``ConsentRegistry.restrictSharing``).

Hiding (EIP-712 ``RecordHiding``) works the same way and lives in the same places (``records.hidden``,
``RecordRegistry.setHidden``), but asks less: no consent releases the record while it is hidden, while
the custodian's own care and a declared break-glass still may (a patient keeping, say, one psychiatric
note out of what they share, without stopping their hospital from using it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from eth_utils import keccak
from medledger_crypto import RecordHiding, RecordRestriction, TypedMessage
from pydantic import BaseModel, Field
from sqlmodel import Session

from ledger_api.access.models import AccessEntry, AccessEntryBase
from ledger_api.access.service import record_access
from ledger_api.auth.caller import Caller
from ledger_api.auth.delegation import require_acts_for
from ledger_api.chain.contract import UnsignedTransaction
from ledger_api.chain.deployment import Consortium
from ledger_api.consents.schemas import Deadline, Signature, packed_signature
from ledger_api.consents.signatures import require_unexpired, signer_of
from ledger_api.core.db import session_scope
from ledger_api.errors import Conflict, Forbidden, InvalidValue, NotFound
from ledger_api.node import Node
from ledger_api.outbox.kinds import ChainWrite, OutboxKind
from ledger_api.outbox.service import enqueue
from ledger_api.records.models import PatientRequest, Record
from ledger_api.records.service import check_custody

#: how far in the future a signed request's ``issued_at`` may lie (clocks differ)
CLOCK_SKEW_S = 300


class RecordRestrictionIn(BaseModel):
    """The patient's (or a delegate's) signed request: EIP-712 ``RecordRestriction(address patient,bytes32
    recordId,bool restricted,uint256 issuedAt,uint256 deadline)`` under the consortium's consent domain
    (``GET /v1/patients/{patient}/signing-domain``)."""

    patient: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$")
    restricted: bool
    issued_at: int = Field(
        ge=0, lt=2**63, description="unix milliseconds; must be later than the last applied request's"
    )
    deadline: Deadline
    signature: Signature


class RecordHidingIn(BaseModel):
    """The patient's (or a delegate's) signed request: EIP-712 ``RecordHiding(address patient,bytes32
    recordId,bool hidden,uint256 issuedAt,uint256 deadline)`` under the consortium's consent domain."""

    patient: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$")
    hidden: bool
    issued_at: int = Field(
        ge=0, lt=2**63, description="unix milliseconds; must be later than the last applied request's"
    )
    deadline: Deadline
    signature: Signature


class RestrictionView(BaseModel):
    """A record's sharing flags as its custodian holds them; ``sequence``: the access-trail entry of the change."""

    record_id: str
    custodian: str
    restricted: bool
    restricted_since: datetime | None
    hidden: bool = False
    hidden_since: datetime | None = None
    sequence: int | None = None


class SetRecordRestriction(ChainWrite):
    """The custodian's chain write: the record restricted or not (nothing else)."""

    kind: ClassVar[str] = "record_restriction"
    record_id: str
    restricted: bool


class SetRecordRestrictionKind(OutboxKind[SetRecordRestriction]):
    message = SetRecordRestriction

    def transaction(self, chain: Consortium[UnsignedTransaction], message: SetRecordRestriction) -> UnsignedTransaction:
        return chain.records.set_restriction(bytes.fromhex(message.record_id), message.restricted)

    def already_done(self, message: SetRecordRestriction) -> bool:
        return self.node.chain.records.is_restricted(bytes.fromhex(message.record_id)) == message.restricted


class SetRecordHidden(ChainWrite):
    """The custodian's chain write: the record hidden from every consent or not (nothing else)."""

    kind: ClassVar[str] = "record_hidden"
    record_id: str
    hidden: bool


class SetRecordHiddenKind(OutboxKind[SetRecordHidden]):
    message = SetRecordHidden

    def transaction(self, chain: Consortium[UnsignedTransaction], message: SetRecordHidden) -> UnsignedTransaction:
        return chain.records.set_hidden(bytes.fromhex(message.record_id), message.hidden)

    def already_done(self, message: SetRecordHidden) -> bool:
        return self.node.chain.records.is_hidden(bytes.fromhex(message.record_id)) == message.hidden


KINDS: tuple[type[OutboxKind[Any]], ...] = (SetRecordRestrictionKind, SetRecordHiddenKind)


def view(record: Record, sequence: int | None = None) -> RestrictionView:
    return RestrictionView(
        record_id=record.id,
        custodian=record.custodian,
        restricted=record.restricted,
        restricted_since=record.restricted_since,
        hidden=record.hidden,
        hidden_since=record.hidden_since,
        sequence=sequence,
    )


def restrict_in_person(node: Node, caller: Caller, record: Record) -> AccessEntry:
    """The patient's own erasure request (``DELETE``, signed in here) within retention: a restriction."""
    if record.restricted:
        raise Conflict("the record is already restricted", code="restriction-unchanged")
    return _apply(node, record, RESTRICTION, True, requester=caller.address, proof="", signed=None)


def change_signed(node: Node, record_id: str, request: RecordRestrictionIn) -> RestrictionView:
    """Applies a patient-signed restriction change to a record held here, checked as the chain would check
    a consent: deadline, signer = the record's patient or their delegate now, and no replay."""
    record = _held(node, record_id)
    message = RecordRestriction(
        patient=request.patient,
        record_id=bytes.fromhex(record_id),
        restricted=request.restricted,
        issued_at=request.issued_at,
        deadline=request.deadline,
    )
    signer, proof = _check_signed(node, record, message, request, record.restriction_issued_at)
    if record.restricted == request.restricted:
        raise Conflict(
            f"the record is {'already' if record.restricted else 'not'} restricted", code="restriction-unchanged"
        )
    entry = _apply(node, record, RESTRICTION, request.restricted, requester=signer, proof=proof, signed=request)
    return _view_after(node, record_id, entry)


def change_hidden(node: Node, record_id: str, request: RecordHidingIn) -> RestrictionView:
    """Applies a patient-signed hiding change to a record held here (checked as a restriction is)."""
    record = _held(node, record_id)
    message = RecordHiding(
        patient=request.patient,
        record_id=bytes.fromhex(record_id),
        hidden=request.hidden,
        issued_at=request.issued_at,
        deadline=request.deadline,
    )
    signer, proof = _check_signed(node, record, message, request, record.hiding_issued_at)
    if record.hidden == request.hidden:
        raise Conflict(f"the record is {'already' if record.hidden else 'not'} hidden", code="hiding-unchanged")
    entry = _apply(node, record, HIDING, request.hidden, requester=signer, proof=proof, signed=request)
    return _view_after(node, record_id, entry)


def _held(node: Node, record_id: str) -> Record:
    with session_scope(node.engine) as session:
        record = session.get(Record, record_id)
    if record is None or record.erased_at is not None:
        raise NotFound(f"no record {record_id} at this member", code="record-not-found")
    check_custody(node, record, writing=True)
    return record


def _check_signed(
    node: Node,
    record: Record,
    message: TypedMessage,
    request: RecordRestrictionIn | RecordHidingIn,
    last_issued_at: int,
) -> tuple[str, str]:
    """The signer (the record's patient or their delegate now) and the signature's digest, after the
    deadline, clock and replay checks; raises otherwise."""
    now = int(time.time())
    require_unexpired(request.deadline)
    if request.issued_at > (now + CLOCK_SKEW_S) * 1000:
        raise InvalidValue("issued_at: lies in the future", field="issued_at", code="issued-in-future")
    signer = signer_of(node, message, request.signature)
    patient = record.patient
    if request.patient.lower() != patient.lower():
        # the same answer whether or not the record is this patient's: a stranger learns nothing
        raise Forbidden(
            "signature: not by this record's patient or a delegate of theirs", code="signature-wrong-signer"
        )
    require_acts_for(node, patient, signer, categories=1 << record.category)
    if request.issued_at <= last_issued_at:
        raise Conflict(
            "issued_at: a later request for this record was applied already; sign a new one",
            code="restriction-request-stale",
        )
    return signer, keccak(packed_signature(request.signature)).hex()


def _view_after(node: Node, record_id: str, entry: AccessEntry) -> RestrictionView:
    with session_scope(node.engine) as session:
        stored = session.get(Record, record_id)
        assert stored is not None
        return view(stored, entry.sequence)


@dataclass(frozen=True)
class _Flag:
    """One of a record's two sharing flags: its columns, its access-trail actions, its chain write and the
    EIP-712 type a patient signs to change it."""

    column: str
    since: str
    issued_at: str
    actions: tuple[str, str]  # (set, cleared)
    write: Callable[[str, bool], ChainWrite]
    signed_type: str


RESTRICTION = _Flag(
    "restricted",
    "restricted_since",
    "restriction_issued_at",
    ("restrict", "unrestrict"),
    lambda record_id, on: SetRecordRestriction(record_id=record_id, restricted=on),
    RecordRestriction.primary_type,
)
HIDING = _Flag(
    "hidden",
    "hidden_since",
    "hiding_issued_at",
    ("hide", "unhide"),
    lambda record_id, on: SetRecordHidden(record_id=record_id, hidden=on),
    RecordHiding.primary_type,
)


def _apply(
    node: Node,
    record: Record,
    flag: _Flag,
    on: bool,
    *,
    requester: str,
    proof: str,
    signed: RecordRestrictionIn | RecordHidingIn | None,
) -> AccessEntry:
    """The change, its chain write, its access-trail entry and the signed request behind it (None: the
    patient's own ``DELETE``, signed in here), in one transaction."""
    fields = AccessEntryBase.patient_action(
        record_id=record.id,
        version=record.latest_version,
        category=record.category,
        patient=record.patient,
        requester=requester,
        action=flag.actions[0] if on else flag.actions[1],
        proof=proof,
        chain_block=node.chain.consents.head_block(),  # the signer's right was read just now
    )
    with node.access_lock, session_scope(node.engine) as session:
        stored = _locked(session, record.id)
        setattr(stored, flag.column, on)
        setattr(stored, flag.since, datetime.now(UTC) if on else None)
        if signed is not None:
            setattr(stored, flag.issued_at, signed.issued_at)
        session.add(stored)
        enqueue(session, flag.write(record.id, on))
        entry = record_access(session, member=node.address, fields=fields)
        if signed is not None:
            session.add(
                PatientRequest(
                    record_id=record.id,
                    kind=flag.signed_type,
                    patient=signed.patient,
                    value=on,
                    issued_at=signed.issued_at,
                    deadline=signed.deadline,
                    signature=packed_signature(signed.signature).hex(),
                    sequence=entry.sequence,
                )
            )
        return entry


def _locked(session: Session, record_id: str) -> Record:
    stored = session.get(Record, record_id, with_for_update=True)
    if stored is None or stored.erased_at is not None:
        raise NotFound(f"no record {record_id} at this member", code="record-not-found")
    return stored
