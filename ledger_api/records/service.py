"""Records: encrypt and store, anchor, release under consent, list as metadata, erase.

Plaintext never touches the disk: an upload streams from the request body through a bounded
queue into the encrypting thread, which writes only ciphertext. The data key is kept only
wrapped for the custodian's own HPKE key; a release unwraps it and re-wraps it for the
requester's registered HPKE key, so the custodian never hands out plaintext to other members.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import structlog
from medledger_crypto import EncryptedRecord, HpkePublicKey, RecordContext, WrapContext, unwrap_data_key, wrap_data_key
from sqlalchemy import Integer, and_, bindparam, func
from sqlalchemy.engine import Row
from sqlmodel import Session, col, select

from ledger_api.access.models import AccessEntryBase
from ledger_api.access.writer import access_log
from ledger_api.auth import policy
from ledger_api.auth.caller import Caller
from ledger_api.auth.delegation import unseen_categories
from ledger_api.chain.commitments import new_salt
from ledger_api.chain.days import day_number
from ledger_api.chain.ids import mint_record_id
from ledger_api.core.db import session_scope, transaction
from ledger_api.errors import Conflict, ConsentDenied, CustodyMoved, InvalidValue, NotFound, RecordRestricted
from ledger_api.node import Node
from ledger_api.outbox.service import anchoring_state, enqueue, items_by_id
from ledger_api.records.anchoring import RecordAnchor
from ledger_api.records.blobs import blob_path, encrypt_upload, verify_blob
from ledger_api.records.models import (
    Custody,
    Record,
    RecordKind,
    RecordPublic,
    RecordVersion,
    RecordVersionPublic,
    WrappedKey,
)
from ledger_api.records.retention import retention_end
from ledger_api.vocabulary import Category, Purpose


@dataclass
class NewRecord:
    """What only the first version of a record says: whose it is, what kind of data, and (for how long
    it must be kept) what kind of care it comes from."""

    patient: str
    category: Category
    media_type: str
    fhir_resource_type: str | None
    record_kind: RecordKind = RecordKind.OTHER


log = structlog.get_logger("medledger.records")


async def upload(
    node: Node,
    body: AsyncIterator[bytes],
    *,
    declared_sha256: str | None,
    new: NewRecord | None = None,
    record_id: str | None = None,
    last_encounter: date | None = None,
) -> Record:
    """Encrypts and stores a ``new`` record, or the next version of ``record_id``, and queues its anchor.

    ``declared_sha256`` is the signed digest of the body (member uploads); a mismatch stores nothing.
    ``last_encounter`` (default: today) sets the retention end; a later version only ever extends it.
    """
    encounter = _encounter(last_encounter)
    if new is not None and record_id is None:
        record_id, version, patient, category = mint_record_id(node.address).hex(), 1, new.patient, int(new.category)
    elif new is None and record_id is not None:
        existing = await asyncio.to_thread(_load_live_record, node, record_id)
        version, patient, category = existing.latest_version + 1, existing.patient, existing.category
    else:
        raise ValueError("upload takes either a new record or the id of an existing one")
    context = RecordContext(
        record_id=bytes.fromhex(record_id), version=version, custodian=node.address, patient=patient
    )
    encrypted, incoming = await encrypt_upload(node, context, body, declared_sha256)
    try:
        return await asyncio.to_thread(
            _store, node, new, record_id, version, patient, category, encrypted, incoming, encounter
        )
    finally:
        incoming.unlink(missing_ok=True)
        encrypted.data_key.destroy()


def _encounter(given: date | None) -> date:
    """The last encounter a record version states: not in the future (a clock a day ahead is forgiven)."""
    today = datetime.now(UTC).date()
    if given is None:
        return today
    if given > today + timedelta(days=1):
        raise InvalidValue(
            "last_encounter: the last encounter cannot be in the future",
            field="last_encounter",
            code="encounter-in-future",
        )
    return given


def _load_live_record(node: Node, record_id: str) -> Record:
    with session_scope(node.engine) as session:
        record = session.get(Record, record_id)
    if record is None:
        raise NotFound(f"no record {record_id} at this member", code="record-not-found")
    if record.erased_at is not None:
        raise NotFound(f"record {record_id} was erased", code="record-erased")
    check_custody(node, record, writing=True)
    return record


def check_custody(node: Node, record: Record | Row[Any], *, writing: bool = False) -> None:
    """Only what this node holds is served or extended: a record handed away names its successor; one
    handed to us is ours once the chain says so (``_custody``). A read only checks; a write (``writing``,
    already in a write path) also remembers the answer, so later checks need no chain read."""
    custody = _custody(node, record)
    if custody == Custody.TRANSFERRED:
        raise CustodyMoved(f"custody of record {record.id} moved to {record.custody_counterpart}")
    if custody == Custody.HANDING and writing:
        raise Conflict(
            f"record {record.id} is being handed over to {record.custody_counterpart}", code="record-in-handover"
        )
    if custody == Custody.INCOMING:
        raise Conflict(
            f"record {record.id} is being handed over to this member; not yet on chain", code="record-in-handover"
        )
    if writing and record.custody == Custody.INCOMING:
        _remember_held(node, [record.id])


def _store(
    node: Node,
    new: NewRecord | None,
    record_id: str,
    version: int,
    patient: str,
    category: int,
    encrypted: EncryptedRecord,
    incoming: Path,
    encounter: date,
) -> Record:
    own_key = node.identity.hpke_public_key
    wrapped = wrap_data_key(encrypted.data_key, own_key, WrapContext(bytes.fromhex(record_id), version, node.address))
    sealed = node.key_vault.seal(record_id, wrapped)  # stored sealed: erasure destroys the key that opens it
    final = blob_path(node, record_id, version)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(incoming, final)  # a crash after this and before commit leaves an orphan blob, never a lost one
    moment = datetime.now(UTC)
    content_hash = encrypted.content_hash.hex()
    try:
        with session_scope(node.engine) as session:
            record = session.get(Record, record_id)
            if record is None:
                if new is None:
                    raise NotFound(f"record {record_id} disappeared during the upload", code="record-not-found")
                record = Record(
                    id=record_id,
                    patient=patient,
                    category=category,
                    media_type=new.media_type,
                    fhir_resource_type=new.fhir_resource_type,
                    custodian=node.address,
                    created_at=moment,
                    subject_salt=new_salt().hex(),
                    record_kind=new.record_kind,
                    encounter_date=encounter,
                )
            elif record.latest_version != version - 1:
                raise Conflict("a concurrent upload added this version first; retry", code="version-race")
            record.latest_version = version
            if record.last_encounter is None or encounter > record.last_encounter:
                record.last_encounter = encounter
                record.retention_until = retention_end(node.settings.retention, record.record_kind, encounter)
            session.add(record)
            session.flush()
            item = enqueue(
                session,
                RecordAnchor.of(
                    record_id=record_id, version=version, subject=_subject_hex(record), content_hash=content_hash
                ),
            )
            session.add(
                RecordVersion(
                    record_id=record_id,
                    version=version,
                    content_hash=content_hash,
                    plaintext_size=encrypted.result.plaintext_size,
                    ciphertext_size=encrypted.result.ciphertext_size,
                    blob_name=final.name,
                    created_at=moment,
                    outbox_id=item.id,
                )
            )
            session.add(
                WrappedKey(
                    record_id=record_id,
                    version=version,
                    recipient=node.address,
                    key_id=own_key.key_id.hex(),
                    wrapped=sealed,
                )
            )
            node.crash_drill.reached("upload.before_commit", flush=session.flush)
        node.crash_drill.reached("upload.after_commit")
        return record
    except BaseException:
        final.unlink(missing_ok=True)
        raise


def _subject_hex(record: Record) -> str:
    """The record's subject commitment (hex); empty for a record anchored before commitments (no salt)."""
    return record.subject().hex() if record.subject_salt else ""


# --------------------------------------------------------------------------------- reading


def _public(session: Session, record: Record, custody: str | None = None, *, opener: bool = False) -> RecordPublic:
    """``opener``: the caller may open the record's anchor (the patient, a delegate, the custodian's own
    system), so the view carries its subject salt."""
    versions = list(
        session.exec(
            select(RecordVersion).where(RecordVersion.record_id == record.id).order_by(col(RecordVersion.version))
        )
    )
    items = items_by_id(session, [v.outbox_id for v in versions if v.outbox_id is not None])

    def anchoring(v: RecordVersion) -> str:  # a handed-over version was checked against its anchor on receipt
        return "anchored" if v.outbox_id is None and v.sealed_by else anchoring_state(items.get(v.outbox_id or -1))

    return RecordPublic(
        id=record.id,
        patient=record.patient,
        category=record.category,
        media_type=record.media_type,
        fhir_resource_type=record.fhir_resource_type,
        custodian=record.custodian,
        latest_version=record.latest_version,
        created_at=record.created_at,
        erased=record.erased_at is not None,
        custody=custody or record.custody,
        subject_salt=(record.subject_salt or None) if opener else None,
        record_kind=record.record_kind,
        last_encounter=record.last_encounter,
        retention_until=record.retention_until,
        restricted=record.restricted,
        restricted_since=record.restricted_since,
        encounter_date=record.encounter_date,
        hidden=record.hidden,
        hidden_since=record.hidden_since,
        versions=[
            RecordVersionPublic(
                version=v.version,
                content_hash=v.content_hash,
                plaintext_size=v.plaintext_size,
                ciphertext_size=v.ciphertext_size,
                created_at=v.created_at,
                anchoring=anchoring(v),
            )
            for v in versions
        ],
    )


def get_record(node: Node, caller: Caller, record_id: str) -> RecordPublic:
    with session_scope(node.engine) as session:
        record = session.get(Record, record_id)
        if record is None:
            raise NotFound(f"no record {record_id} at this member", code="record-not-found")
        shown, opener = _visible(node, caller, record.patient, [record], None)
        if not shown:
            raise ConsentDenied("no consent lets you see this record")
        return _public(session, record, _custody(node, record), opener=opener)


def list_records(node: Node, caller: Caller, patient: str, purpose: Purpose | None) -> list[RecordPublic]:
    """A patient's records here, metadata only. Remote members see only categories they may read now."""
    with session_scope(node.engine) as session:
        records = list(
            session.exec(
                select(Record)
                .where(Record.patient == patient, Record.custody != Custody.TRANSFERRED)
                .order_by(col(Record.created_at))
            )
        )
        shown, opener = _visible(node, caller, patient, records, purpose)
        return [_public(session, r, _custody(node, r), opener=opener) for r in shown]


def settle_incoming(node: Node) -> int:
    """Records handed to us that the chain now says are ours: remembered as held (a write path, such
    as starting a handover of our own, calls this before it selects what we hold)."""
    with session_scope(node.engine) as session:
        incoming = list(session.exec(select(Record).where(Record.custody == Custody.INCOMING)))
    held = [r.id for r in incoming if _custody(node, r) == Custody.HELD]
    _remember_held(node, held)
    return len(held)


def _remember_held(node: Node, record_ids: list[str]) -> None:
    """Records handed to us that the chain says are ours: held from now on, in the database."""
    if not record_ids:
        return
    with session_scope(node.engine) as session:
        query = select(Record).where(col(Record.id).in_(record_ids), Record.custody == Custody.INCOMING)
        for stored in session.exec(query):
            stored.custody = Custody.HELD
            session.add(stored)


def _custody(node: Node, record: Record | Row[Any]) -> str:
    """A record's custody as it stands: one handed to us is held once the chain says so, whether or
    not a write has remembered it yet (a read checks, it does not write)."""
    if (
        record.custody == Custody.INCOMING
        and node.chain.records.record(bytes.fromhex(record.id)).custodian == node.address
    ):
        return Custody.HELD
    return record.custody


def _visible(
    node: Node, caller: Caller, patient: str, records: list[Record], purpose: Purpose | None
) -> tuple[list[Record], bool]:
    """The records the caller may see now, and whether it is one who may open the anchors (not remote).

    Another member sees what it could be released: under a break-glass, every record; under consents,
    those of a category and day of care some consent covers for ``purpose`` (default treatment), unless
    the patient restricted or hid them."""
    role = policy.require(policy.PATIENT_DELEGATE_OR_MEMBER_READS_RECORDS, node, caller, patient)
    if role in ("delegate", "viewing-delegate"):  # every record but those of categories kept from them
        unseen = unseen_categories(node, patient, caller.address)
        return [r for r in records if not (unseen >> r.category) & 1], True
    if role != "remote":  # the patient, the custodian's own system: every record
        return records, True
    if node.chain.consents.emergency_access(patient, caller.address) is not None:
        return records, False
    wanted = purpose if purpose is not None else Purpose.TREATMENT
    consents = node.chain.consents
    answers: dict[tuple[int, int], bool] = {}
    every_day: set[int] = set()  # categories a consent covers whatever the day of care: asked once

    def covered(record: Record) -> bool:
        key = (record.category, record.encounter_day())
        if key[0] in every_day:
            return True
        if key not in answers:
            consent_id = consents.permitting_consent(patient, caller.address, key[0], wanted, key[1])
            answers[key] = consent_id is not None
            if consent_id is not None:
                terms = consents.consent(consent_id)
                if terms.care_from == terms.care_to == 0:
                    every_day.add(key[0])
        return answers[key]

    return [r for r in records if not r.restricted and not r.hidden and covered(r)], False


@dataclass
class Release:
    """What a requester receives: ciphertext and its key wrapped for them.

    ``stored``: the record's columns and the released version's (``version``, ``content_hash``,
    ``sealed_by``) as one plain row; ``sequence`` and ``basis``: the access-log entry written for it.
    ``content``: the ciphertext itself when small enough to hold (the very bytes whose hash was
    just checked); otherwise None and it is streamed from ``path``.
    """

    stored: Row[Any]
    wrapped_key: bytes
    sequence: int
    basis: str
    path: Path
    content: bytes | None = None

    @property
    def sealed_by(self) -> str:
        """The custodian in the version's encryption context (the original one after a handover)."""
        return str(self.stored.sealed_by or self.stored.custodian)


#: A record, the asked (else latest) version and this node's wrapped key for it, in one prepared
#: query read as plain columns (release runs on every fetch: one statement, and no ORM objects,
#: which cost ~3x the query itself).
RELEASABLE = (
    select(  # type: ignore[misc]
        Record.id,
        Record.patient,
        Record.category,
        Record.media_type,
        Record.fhir_resource_type,
        Record.custodian,  # type: ignore[call-overload]
        Record.latest_version,
        Record.erased_at,
        Record.custody,
        Record.custody_counterpart,
        Record.restricted,
        Record.hidden,
        Record.encounter_date,
        RecordVersion.version,
        RecordVersion.content_hash,
        RecordVersion.sealed_by,
        WrappedKey.wrapped,
    )
    .select_from(Record)
    .outerjoin(
        RecordVersion,
        and_(
            col(RecordVersion.record_id) == col(Record.id),
            col(RecordVersion.version) == func.coalesce(bindparam("version", type_=Integer), Record.latest_version),
        ),
    )
    .outerjoin(
        WrappedKey,
        and_(
            col(WrappedKey.record_id) == col(Record.id),
            col(WrappedKey.version) == col(RecordVersion.version),
            col(WrappedKey.recipient) == bindparam("recipient"),
        ),
    )
    .where(Record.id == bindparam("record_id"))
)


def release(
    node: Node, caller: Caller, record_id: str, version: int | None, purpose: Purpose, clinician: str
) -> Release:
    """Checks the chain now, logs the access, and returns the ciphertext with a key wrapped for the caller.

    Fails closed: if the chain cannot be asked, ``ChainUnavailable`` (503) and nothing is released.
    """
    policy.require(policy.CUSTODIAN_OR_CONSENTED_MEMBER_READS_CONTENT, node, caller)
    with transaction(node.engine) as connection:
        stored = connection.execute(
            RELEASABLE, {"record_id": record_id, "version": version, "recipient": node.address}
        ).first()
    if stored is None or stored.erased_at is not None:
        raise NotFound(f"no record {record_id} at this member", code="record-not-found")
    number = version or stored.latest_version
    check_custody(node, stored)
    if stored.version is None or stored.wrapped is None:
        raise NotFound(f"record {record_id} has no version {number}", code="version-not-found")
    block = caller.head_block if caller.head_block is not None else node.chain.consents.head_block()
    basis, authorization = _authorize(node, caller, stored, purpose, block)
    path = blob_path(node, record_id, number)
    content = verify_blob(path, stored.content_hash)
    if caller.local:
        recipient_key = node.identity.hpke_public_key
    else:
        member = caller.member or node.chain.registry.member(caller.address)
        recipient_key = _published_key(member.hpke_public_key)
    wrapped = rewrap(node, record_id, number, stored.wrapped, recipient_key, caller.address)
    fields = AccessEntryBase(
        record_id=record_id,
        record_version=number,
        category=stored.category,
        patient=stored.patient,
        requester=caller.address,
        clinician=clinician,
        purpose=int(purpose),
        basis=basis,
        authorization=authorization,
        action="read",
        chain_block=block,
    )
    sequence = access_log(node).write(fields)
    node.crash_drill.reached("fetch.after_commit")
    return Release(stored=stored, wrapped_key=wrapped, sequence=sequence, basis=basis, path=path, content=content)


def rewrap(node: Node, record_id: str, version: int, sealed: bytes, key: HpkePublicKey, reader: str) -> bytes:
    """The version's data key, opened with this node's key (``sealed``: the stored, vault-sealed copy) and
    wrapped again for ``reader``'s ``key``; the key in the clear lives only in between."""
    data_key = unwrap_data_key(
        node.key_vault.open(record_id, sealed),
        node.identity.hpke_keys(),
        WrapContext(bytes.fromhex(record_id), version, node.address),
    )
    try:
        return wrap_data_key(data_key, key, WrapContext(bytes.fromhex(record_id), version, reader))
    finally:
        data_key.destroy()


@lru_cache(maxsize=256)
def _published_key(raw: bytes) -> HpkePublicKey:
    """A member's registered HPKE key, parsed once per distinct key (parsing ML-KEM costs more than
    using it; the chain is still read on every release, and a rotated key is another entry here)."""
    return HpkePublicKey.from_bytes(raw)


def _authorize(node: Node, caller: Caller, record: Record | Row[Any], purpose: Purpose, block: int) -> tuple[str, str]:
    """Reads the consent (else a break-glass) at ``block``, the latest block, logged with the entry.

    A restriction (of this record, here; of all the patient's records, on chain) leaves the custodian
    legal purposes and a break-glass it declared itself (life and health, PIPL Art. 13(4): its own
    emergency department may need the record), and another member only a break-glass: the chain's
    consent check answers no while the patient's sharing is restricted, and this record's restriction
    skips it."""
    consents = node.chain.consents
    if caller.local:
        if purpose == Purpose.LEGAL or not (record.restricted or consents.is_restricted(record.patient, block)):
            return "custodian", ""
    else:
        consent_id = (
            None
            if record.restricted or record.hidden
            else consents.permitting_consent(
                record.patient, caller.address, record.category, int(purpose), day_number(record.encounter_date), block
            )
        )
        if consent_id is not None:
            return "consent", f"{consent_id:064x}"
    break_glass_id = consents.emergency_access(record.patient, caller.address, block)
    if break_glass_id is not None:
        return "break_glass", f"{break_glass_id:064x}"
    if caller.local:
        raise RecordRestricted(
            "the patient restricted this record (an erasure request within its retention period): "
            "this hospital may read it only for purpose legal, or under a break-glass it declares",
            code="record-restricted",
        )
    # names only what the caller sent (its account, its purpose): never the record's category or patient,
    # which a member without consent could not list
    raise ConsentDenied(
        f"no consent lets {caller.address} read this record for {purpose.name.lower()}, and no break-glass is declared"
    )
