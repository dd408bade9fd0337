"""Records: encrypt and store, anchor, release under consent, list as metadata, erase.

Plaintext never touches the disk: an upload streams from the request body through a bounded
queue into the encrypting thread, which writes only ciphertext. The data key is kept only
wrapped for the custodian's own HPKE key; a release unwraps it and re-wraps it for the
requester's registered HPKE key, so the custodian never hands out plaintext to other members.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import os
import queue
import threading
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import blake3
import structlog
from medledger_crypto import (
    EncryptedRecord,
    HpkePublicKey,
    RecordContext,
    WrapContext,
    crypto_shred,
    encrypt_record,
    unwrap_data_key,
    wrap_data_key,
)
from sqlalchemy import Integer, and_, bindparam, func
from sqlalchemy.engine import Engine, Row
from sqlmodel import Session, col, select

from ledger_api.access.models import AccessEntry, AccessEntryBase
from ledger_api.access.service import record_access
from ledger_api.auth.service import Caller, speaks_for
from ledger_api.chain.clients import Basis, mint_record_id
from ledger_api.core.db import checkpoint, session_scope, transaction
from ledger_api.core.key_vault import KeyVault
from ledger_api.errors import (
    Conflict,
    ConsentDenied,
    CustodyMoved,
    Forbidden,
    IntegrityViolation,
    NotFound,
    PayloadTooLarge,
    Unauthenticated,
)
from ledger_api.node import Node
from ledger_api.outbox.service import anchoring_state, enqueue, items_by_id
from ledger_api.records.models import Record, RecordPublic, RecordVersion, RecordVersionPublic, WrappedKey
from ledger_api.vocabulary import Category, Purpose

_EOF = object()
_ABORT = object()


class _QueueReader(io.RawIOBase):
    """The encrypting thread's view of the request body: blocking reads from a bounded queue."""

    def __init__(self, chunks: queue.Queue) -> None:
        self._chunks, self._pending, self._done = chunks, memoryview(b""), False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._pending and not self._done:
            item = self._chunks.get()
            if item is _ABORT:
                raise OSError("upload aborted")
            if item is _EOF:
                self._done = True
            else:
                self._pending = memoryview(item)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


@dataclass
class NewRecord:
    """What only the first version of a record says: whose it is and what kind of data."""

    patient: str
    category: Category
    media_type: str
    fhir_resource_type: str | None


log = structlog.get_logger("medledger.records")


def blob_path(node: Node, record_id: str, version: int) -> Path:
    return node.blob_dir / record_id / f"v{version}.bin"


def sweep_orphans(engine: Engine, blob_dir: Path, *, older_than: float, vault: KeyVault | None = None) -> int:
    """Deletes what a process that died mid-write left in the blob store and, with ``vault``, destroys the
    keys of records erased or handed away (a crash between that commit and the shredding); returns how
    many files.

    A ciphertext renamed into place whose database transaction never committed is unreadable (its
    wrapped key was never stored) and unknown to the database; temp files (``.incoming-``,
    ``.peer-``, ``.handover-``) belong to requests that no longer exist. Only files last written
    before ``older_than`` go: the moment this node started, before any of its processes could
    accept an upload, so nothing in flight is ever touched. The files are listed before the
    database is asked, so a row committed meanwhile is seen.
    """
    shredded = _sweep_vault(engine, vault) if vault is not None else 0
    candidates = [p for p in blob_dir.rglob("*") if p.is_file() and p.stat().st_mtime < older_than]
    if not candidates:
        return shredded
    with session_scope(engine) as session:
        known = set(session.exec(select(RecordVersion.record_id, RecordVersion.blob_name)).all())
    removed = 0
    for path in candidates:
        temp = path.parent == blob_dir and path.name.startswith((".incoming-", ".peer-", ".handover-"))
        orphan = path.parent.parent == blob_dir and (path.parent.name, path.name) not in known
        if temp or orphan:
            path.unlink(missing_ok=True)
            removed += 1
    if removed:
        log.warning("orphan_blobs_removed", files=removed)
    return removed + shredded


def _sweep_vault(engine: Engine, vault: KeyVault) -> int:
    with session_scope(engine) as session:
        gone = set(
            session.exec(
                select(Record.id).where((col(Record.erased_at).is_not(None)) | (col(Record.custody) == "transferred"))
            ).all()
        )
    shredded = sum(vault.shred(record_id) for record_id in sorted(gone & vault.record_ids()))
    if shredded:
        log.warning("erased_record_keys_destroyed_at_start", keys=shredded)
    return shredded


async def _encrypt_body(
    node: Node, context: RecordContext, body: AsyncIterator[bytes], declared_sha256: str | None
) -> tuple[EncryptedRecord, Path]:
    limit = node.settings.limits.max_upload_bytes
    chunks: queue.Queue = queue.Queue(maxsize=16)
    node.blob_dir.mkdir(parents=True, exist_ok=True)
    incoming = node.blob_dir / f".incoming-{uuid.uuid4().hex}"

    done: Future[EncryptedRecord] = Future()

    def encrypt() -> None:
        try:
            with open(incoming, "wb") as sink:
                done.set_result(encrypt_record(context, _QueueReader(chunks), sink))
        except BaseException as exc:
            done.set_exception(exc)

    # A thread of its own, not a pool thread: a pool of blocked encryptors would starve the
    # very pool the request needs to feed them (a deadlock under concurrent uploads).
    threading.Thread(target=encrypt, name="upload-encrypt", daemon=True).start()
    worker = asyncio.wrap_future(done)
    digest, size = hashlib.sha256(), 0
    try:
        async for chunk in body:
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"upload exceeds the {limit}-byte limit", code="upload-too-large")
            digest.update(chunk)
            await asyncio.to_thread(chunks.put, chunk)
        await asyncio.to_thread(chunks.put, _EOF)
        encrypted = await worker
        if declared_sha256 is not None and digest.hexdigest() != declared_sha256:
            raise Unauthenticated("body does not match the signed content digest", code="body-digest-mismatch")
        return encrypted, incoming
    except BaseException:
        chunks.put(_ABORT)
        try:
            await worker
        except BaseException:
            pass
        incoming.unlink(missing_ok=True)
        raise


async def upload(
    node: Node,
    body: AsyncIterator[bytes],
    *,
    declared_sha256: str | None,
    new: NewRecord | None = None,
    record_id: str | None = None,
) -> Record:
    """Encrypts and stores a ``new`` record, or the next version of ``record_id``, and queues its anchor.

    ``declared_sha256`` is the signed digest of the body (member uploads); a mismatch stores nothing.
    """
    if (new is None) == (record_id is None):
        raise ValueError("upload takes either a new record or the id of an existing one")
    if new is not None:
        record_id, version, patient, category = mint_record_id(node.address).hex(), 1, new.patient, int(new.category)
    else:
        existing = await asyncio.to_thread(_load_live_record, node, record_id)
        version, patient, category = existing.latest_version + 1, existing.patient, existing.category
    context = RecordContext(
        record_id=bytes.fromhex(record_id), version=version, custodian=node.address, patient=patient
    )
    encrypted, incoming = await _encrypt_body(node, context, body, declared_sha256)
    try:
        return await asyncio.to_thread(_store, node, new, record_id, version, patient, category, encrypted, incoming)
    finally:
        incoming.unlink(missing_ok=True)
        encrypted.data_key.destroy()


def _load_live_record(node: Node, record_id: str) -> Record:
    with session_scope(node.engine) as session:
        record = session.get(Record, record_id)
    if record is None:
        raise NotFound(f"no record {record_id} at this member", code="record-not-found")
    if record.erased_at is not None:
        raise NotFound(f"record {record_id} was erased", code="record-erased")
    _check_custody(node, record, writing=True)
    return record


def _check_custody(node: Node, record: Record | Row[Any], *, writing: bool = False) -> None:
    """Only what this node holds is served or extended: a record handed away names its successor; one
    handed to us is ours once the chain says so (checked, then remembered in the database)."""
    if record.custody == "transferred":
        raise CustodyMoved(f"custody of record {record.id} moved to {record.custody_counterpart}")
    if record.custody == "handing" and writing:
        raise Conflict(
            f"record {record.id} is being handed over to {record.custody_counterpart}", code="record-in-handover"
        )
    if record.custody == "incoming":
        if node.chain.records.record(bytes.fromhex(record.id)).custodian != node.address:
            raise Conflict(
                f"record {record.id} is being handed over to this member; not yet on chain", code="record-in-handover"
            )
        with session_scope(node.engine) as session:
            stored = session.get(Record, record.id)
            if stored is not None and stored.custody == "incoming":
                stored.custody = "held"
                session.add(stored)


def _store(
    node: Node,
    new: NewRecord | None,
    record_id: str,
    version: int,
    patient: str,
    category: int,
    encrypted: EncryptedRecord,
    incoming: Path,
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
                )
            elif record.latest_version != version - 1:
                raise Conflict("a concurrent upload added this version first; retry", code="version-race")
            record.latest_version = version
            session.add(record)
            session.flush()
            kind = "anchor_record" if version == 1 else "anchor_version"
            item = enqueue(
                session,
                kind,
                {
                    "record_id": record_id,
                    "version": version,
                    "patient": patient,
                    "category": category,
                    "content_hash": content_hash,
                },
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


# --------------------------------------------------------------------------------- reading


def _public(session: Session, record: Record) -> RecordPublic:
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
        custody=record.custody,
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
        _check_can_see(node, caller, record.patient, {record.category})
        return _public(session, record)


def list_records(node: Node, caller: Caller, patient: str, purpose: Purpose | None) -> list[RecordPublic]:
    """A patient's records here, metadata only. Remote members see only categories they may read now."""
    with session_scope(node.engine) as session:
        records = list(
            session.exec(
                select(Record)
                .where(Record.patient == patient, Record.custody != "transferred")
                .order_by(col(Record.created_at))
            )
        )
        visible = _visible_categories(node, caller, patient, {r.category for r in records}, purpose)
        return [_public(session, r) for r in records if r.category in visible]


def _visible_categories(
    node: Node, caller: Caller, patient: str, categories: set[int], purpose: Purpose | None
) -> set[int]:
    if caller.kind == "patient":
        if not speaks_for(node, caller, patient):
            raise Forbidden(
                "patients see only their own records (or those of patients they are delegate for)", code="patient-scope"
            )
        return categories
    if caller.kind == "auditor":
        raise Forbidden("auditors see the trail and hashes, not record listings", code="role-not-allowed")
    if caller.local:
        return categories
    if node.chain.consents.emergency_access(patient, caller.address) is not None:
        return categories
    wanted = purpose if purpose is not None else Purpose.TREATMENT
    return {c for c in categories if node.chain.consents.permitting_consent(patient, caller.address, c, wanted)}


def _check_can_see(node: Node, caller: Caller, patient: str, categories: set[int]) -> None:
    if not _visible_categories(node, caller, patient, categories, None):
        raise ConsentDenied("no consent lets you see this record")


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
        return self.stored.sealed_by or self.stored.custodian


#: A record, the asked (else latest) version and this node's wrapped key for it, in one prepared
#: query read as plain columns (release runs on every fetch: one statement, and no ORM objects,
#: which cost ~3x the query itself).
_RELEASABLE = (
    select(
        Record.id,
        Record.patient,
        Record.category,
        Record.media_type,
        Record.custodian,  # type: ignore[call-overload]
        Record.latest_version,
        Record.erased_at,
        Record.custody,
        Record.custody_counterpart,
        RecordVersion.version,
        RecordVersion.content_hash,
        RecordVersion.sealed_by,
        WrappedKey.wrapped,
    )
    .select_from(Record)
    .outerjoin(
        RecordVersion,
        and_(
            RecordVersion.record_id == Record.id,  # type: ignore[arg-type]
            RecordVersion.version == func.coalesce(bindparam("version", type_=Integer), Record.latest_version),
        ),
    )
    .outerjoin(
        WrappedKey,
        and_(
            WrappedKey.record_id == Record.id,
            WrappedKey.version == RecordVersion.version,  # type: ignore[arg-type]
            WrappedKey.recipient == bindparam("recipient"),
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
    if caller.kind != "member":
        raise Forbidden("only members receive records (auditors never see content)", code="role-not-allowed")
    with transaction(node.engine) as connection:
        stored = connection.execute(
            _RELEASABLE, {"record_id": record_id, "version": version, "recipient": node.address}
        ).first()
    if stored is None or stored.erased_at is not None:
        raise NotFound(f"no record {record_id} at this member", code="record-not-found")
    number = version or stored.latest_version
    _check_custody(node, stored)
    if stored.version is None or stored.wrapped is None:
        raise NotFound(f"record {record_id} has no version {number}", code="version-not-found")
    block = caller.head_block if caller.head_block is not None else node.chain.consents.head_block()
    basis, authorization = _authorize(node, caller, stored, purpose, block)
    path = blob_path(node, record_id, number)
    content = _verify_blob(path, stored.content_hash)
    if caller.local:
        recipient_key = node.identity.hpke_public_key
    else:
        member = caller.member or node.chain.registry.member(caller.address)
        recipient_key = _published_key(member.hpke_public_key)
    data_key = unwrap_data_key(
        node.key_vault.open(record_id, stored.wrapped),
        node.identity.hpke_keys(),
        WrapContext(bytes.fromhex(record_id), number, node.address),
    )
    try:
        wrapped = wrap_data_key(data_key, recipient_key, WrapContext(bytes.fromhex(record_id), number, caller.address))
    finally:
        data_key.destroy()
    fields = AccessEntryBase(
        record_id=record_id,
        record_version=number,
        patient=stored.patient,
        requester=caller.address,
        clinician=clinician,
        purpose=int(purpose),
        basis=basis,
        authorization=authorization,
        action="read",
        chain_block=block,
    )
    sequence = node.access_log.write(fields)
    node.crash_drill.reached("fetch.after_commit")
    return Release(stored=stored, wrapped_key=wrapped, sequence=sequence, basis=basis, path=path, content=content)


@lru_cache(maxsize=256)
def _published_key(raw: bytes) -> HpkePublicKey:
    """A member's registered HPKE key, parsed once per distinct key (parsing ML-KEM costs more than
    using it; the chain is still read on every release, and a rotated key is another entry here)."""
    return HpkePublicKey.from_bytes(raw)


def _authorize(node: Node, caller: Caller, record: Record | Row[Any], purpose: Purpose, block: int) -> tuple[str, str]:
    """Reads the consent (else a break-glass) at ``block``, the latest block, logged with the entry."""
    if caller.local:
        return "custodian", ""
    consents = node.chain.consents
    consent_id = consents.permitting_consent(record.patient, caller.address, record.category, int(purpose), block)
    if consent_id is not None:
        return "consent", f"{consent_id:064x}"
    break_glass_id = consents.emergency_access(record.patient, caller.address, block)
    if break_glass_id is not None:
        return "break_glass", f"{break_glass_id:064x}"
    # names only what the caller sent (its account, its purpose): never the record's category or patient,
    # which a member without consent could not list
    raise ConsentDenied(
        f"no consent lets {caller.address} read this record for {purpose.name.lower()}, and no break-glass is declared"
    )


#: Ciphertexts up to this size are read once, hash-checked and sent from memory; larger ones are
#: checked, then streamed from disk.
IN_MEMORY_RELEASE_BYTES = 4 << 20


def _verify_blob(path: Path, content_hash: str) -> bytes | None:
    """Checks the stored ciphertext against its content hash; returns it if small (see above)."""
    digest = blake3.blake3()
    kept = bytearray()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
                if len(kept) <= IN_MEMORY_RELEASE_BYTES:
                    kept += chunk
    except FileNotFoundError:
        raise IntegrityViolation("the ciphertext is missing from the blob store", code="ciphertext-missing") from None
    if not hmac.compare_digest(digest.hexdigest(), content_hash):
        raise IntegrityViolation(
            "the stored ciphertext does not match its content hash", code="stored-ciphertext-mismatch"
        )
    return bytes(kept) if len(kept) <= IN_MEMORY_RELEASE_BYTES else None


def erase(node: Node, caller: Caller, record_id: str) -> AccessEntry:
    """Crypto-shreds a record (every version): its key-encryption key overwritten and removed, so that every
    copy of its sealed keys the database keeps (rows, write-ahead log, free pages, backups) is noise; then
    the rows and ciphertext deleted, and the erasure logged."""
    with session_scope(node.engine) as session:
        record = session.get(Record, record_id)
    if record is None or record.erased_at is not None:
        raise NotFound(f"no record {record_id} at this member", code="record-not-found")
    if not (caller.local or (caller.kind == "patient" and caller.address == record.patient)):
        raise Forbidden("only the custodian or the patient may erase a record", code="role-not-allowed")
    _check_custody(node, record, writing=True)
    fields = AccessEntryBase(
        record_id=record_id,
        record_version=record.latest_version,
        patient=record.patient,
        requester=caller.address,
        clinician="erasure",
        purpose=int(Purpose.PATIENT_REQUEST),
        basis="custodian",
        authorization="",
        action="erase",
    )
    with node.access_lock, session_scope(node.engine) as session:
        keys = list(session.exec(select(WrappedKey).where(WrappedKey.record_id == record_id)))
        crypto_shred([bytearray(k.wrapped) for k in keys])
        for key in keys:
            session.delete(key)
        stored = session.get(Record, record_id)
        assert stored is not None
        stored.erased_at = datetime.now(UTC)
        session.add(stored)
        entry = record_access(session, member=node.address, fields=fields)
    # after the commit: a failed commit leaves the record as it was; a crash right here leaves a key
    # that the start-up sweep destroys (``sweep_orphans``: keys of erased and handed-away records)
    node.key_vault.shred(record_id)
    checkpoint(node.engine)  # SQLite: the deleted rows leave the write-ahead log too
    for version in range(1, record.latest_version + 1):
        blob_path(node, record_id, version).unlink(missing_ok=True)
    return entry


BASIS_CODES = {"consent": Basis.CONSENT, "break_glass": Basis.BREAK_GLASS, "custodian": Basis.CUSTODIAN}
