"""The node's key vault: one key-encryption key (KEK) per record, in a file of its own.

Why files: erasure must destroy every means to decrypt that the node holds, and a database cannot
forget what it once stored (see ``medledger_crypto.KeyEncryptionKey``). The wrapped data keys in the
database are sealed under their record's KEK; erasing a record overwrites its KEK file in place with
zeros, flushes it to the disk and unlinks it. What the database still holds (rows, write-ahead log,
free pages, backups) is then sealed under a key that no longer exists.

What this relies on, and the README says: the vault folder is on a file system that overwrites in
place (ext4, XFS; not a copy-on-write one such as btrfs or ZFS, whose old blocks survive), and
backups of the vault are kept apart from database backups with a short retention (a backup of the
vault taken before an erasure can still open that record's keys from a database backup).

Records stored before the vault existed have plain wrapped keys (no ``MLK1`` header); they are still
read, and erasing them removes the rows as before.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from medledger_crypto import KeyEncryptionKey, is_sealed

from ledger_api.errors import NotFound

_RECORD_ID = re.compile(r"^[0-9a-f]{64}$")


class KeyVault:
    """Per-record KEKs under ``directory`` (``<first two hex digits>/<record id>``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, record_id: str) -> Path:
        if not _RECORD_ID.match(record_id):
            raise ValueError("a record id is 64 lowercase hex digits")
        return self.directory / record_id[:2] / record_id

    def kek(self, record_id: str, *, create: bool = False) -> KeyEncryptionKey:
        """The record's KEK; with ``create``, made (once, atomically) if it does not exist yet."""
        path = self._path(record_id)
        try:
            return KeyEncryptionKey(path.read_bytes())
        except FileNotFoundError:
            if not create:
                raise NotFound(f"the keys of record {record_id} were erased", code="record-erased") from None
        except ValueError:
            raise NotFound(f"the keys of record {record_id} were erased", code="record-erased") from None
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = KeyEncryptionKey.generate()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another request made it first: use theirs
            return KeyEncryptionKey(path.read_bytes())
        try:
            os.write(fd, fresh.to_bytes())
            os.fsync(fd)
        finally:
            os.close(fd)
        _fsync_directory(path.parent)  # the new name is durable before the database refers to it
        return fresh

    def seal(self, record_id: str, wrapped_key: bytes) -> bytes:
        """A wrapped data key as it is stored: sealed under the record's KEK (made on first use)."""
        return self.kek(record_id, create=True).seal(wrapped_key, associated_data=bytes.fromhex(record_id))

    def open(self, record_id: str, stored: bytes) -> bytes:
        """The wrapped data key from what is stored (a key stored before the vault is returned as it is)."""
        if not is_sealed(stored):
            return stored
        return self.kek(record_id).open(stored, associated_data=bytes.fromhex(record_id))

    def record_ids(self) -> set[str]:
        """Every record that has a key here."""
        if not self.directory.is_dir():
            return set()
        return {p.name for p in self.directory.glob("??/*") if _RECORD_ID.match(p.name)}

    def shred(self, record_id: str) -> bool:
        """Overwrites the record's KEK in place, flushes it to the disk and removes it; whether there was one."""
        path = self._path(record_id)
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            size = os.fstat(fd).st_size
            os.pwrite(fd, b"\x00" * size, 0)
            os.fsync(fd)
        finally:
            os.close(fd)
        path.unlink()
        _fsync_directory(path.parent)  # the unlink itself is durable too
        return True


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
