"""The blob store: a record version's ciphertext on disk (``<blob_dir>/<record id>/v<n>.bin``).

Uploads are encrypted on the way in by a thread of their own fed from the request body through a
bounded queue (``encrypt_upload``); releases check the stored ciphertext against its anchored
content hash before it leaves (``verify_blob``); ``sweep_orphans`` tidies what a crash left.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import queue
import threading
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, BinaryIO, cast

import blake3
import structlog
from medledger_crypto import EncryptedRecord, RecordContext, encrypt_record
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from ledger_api.core.db import session_scope
from ledger_api.core.key_vault import KeyVault
from ledger_api.errors import IntegrityViolation, PayloadTooLarge, Unauthenticated
from ledger_api.node import Node
from ledger_api.records.models import Custody, Record, RecordVersion

log = structlog.get_logger("medledger.records")

_EOF = object()
_ABORT = object()


class _QueueReader(io.RawIOBase):
    """The encrypting thread's view of the request body: blocking reads from a bounded queue."""

    def __init__(self, chunks: queue.Queue[Any]) -> None:
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
                select(Record.id).where(
                    (col(Record.erased_at).is_not(None)) | (col(Record.custody) == Custody.TRANSFERRED)
                )
            ).all()
        )
    shredded = sum(vault.shred(record_id) for record_id in sorted(gone & vault.record_ids()))
    if shredded:
        log.warning("erased_record_keys_destroyed_at_start", keys=shredded)
    return shredded


async def encrypt_upload(
    node: Node, context: RecordContext, body: AsyncIterator[bytes], declared_sha256: str | None
) -> tuple[EncryptedRecord, Path]:
    limit = node.settings.limits.max_upload_bytes
    chunks: queue.Queue[Any] = queue.Queue(maxsize=16)
    node.blob_dir.mkdir(parents=True, exist_ok=True)
    incoming = node.blob_dir / f".incoming-{uuid.uuid4().hex}"

    done: Future[EncryptedRecord] = Future()

    def encrypt() -> None:
        try:
            with open(incoming, "wb") as sink:
                done.set_result(encrypt_record(context, cast(BinaryIO, _QueueReader(chunks)), sink))
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


#: Ciphertexts up to this size are read once, hash-checked and sent from memory; larger ones are
#: checked, then streamed from disk.
IN_MEMORY_RELEASE_BYTES = 4 << 20


def verify_blob(path: Path, content_hash: str) -> bytes | None:
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
