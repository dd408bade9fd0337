"""Record encryption bound to its context, and crypto-shredding.

A record version's associated data binds record id, version, custodian and patient, so a
ciphertext moved to another record, presented as another version, or re-attributed to another
custodian or patient fails to open. Fixed-length canonical encoding (no ambiguity)::

    "MedLedger record v1" 0x00 || record id (32) || version uint32 BE (4)
                               || custodian address (20) || patient address (20)
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

from medledger_crypto._streaming import DEFAULT_SEGMENT_SIZE, DataKey, StreamResult, decrypt_stream, encrypt_stream

_AD_PREFIX = b"MedLedger record v1\x00"


def _address(value: str | bytes) -> bytes:
    if isinstance(value, str):
        raw = bytes.fromhex(value.removeprefix("0x"))
    else:
        raw = bytes(value)
    if len(raw) != 20:
        raise ValueError("an account address is 20 bytes")
    return raw


@dataclass(frozen=True)
class RecordContext:
    """Who and what a record version is; becomes the AEAD's associated data."""

    record_id: bytes
    version: int
    custodian: str
    patient: str

    def __post_init__(self) -> None:
        if len(self.record_id) != 32:
            raise ValueError("a record id is 32 bytes")
        if not 1 <= self.version < 2**32:
            raise ValueError("a record version is between 1 and 2**32 - 1")
        _address(self.custodian)
        _address(self.patient)

    def associated_data(self) -> bytes:
        return (
            _AD_PREFIX
            + bytes(self.record_id)
            + struct.pack(">I", self.version)
            + _address(self.custodian)
            + _address(self.patient)
        )


@dataclass(frozen=True)
class EncryptedRecord:
    """The result of encrypting one record version: its fresh data key and the stream facts.

    ``content_hash`` is what goes on chain. ``data_key`` must be wrapped for each reader and
    then destroyed; it is never stored in the clear.
    """

    data_key: DataKey
    result: StreamResult

    @property
    def content_hash(self) -> bytes:
        return self.result.content_hash


def encrypt_record(
    context: RecordContext, source: BinaryIO, sink: BinaryIO, *, segment_size: int = DEFAULT_SEGMENT_SIZE
) -> EncryptedRecord:
    """Encrypts one record version under a fresh random data key."""
    data_key = DataKey.generate()
    result = encrypt_stream(data_key, source, sink, context.associated_data(), segment_size=segment_size)
    return EncryptedRecord(data_key, result)


def decrypt_record(context: RecordContext, data_key: DataKey, source: BinaryIO, sink: BinaryIO) -> StreamResult:
    """Opens one record version; ``DecryptionError`` if it belongs to another context or was altered."""
    return decrypt_stream(data_key, source, sink, context.associated_data())


def crypto_shred(wrapped_keys: Iterable[bytearray]) -> int:
    """Erasure by crypto-shredding: overwrite every wrapped copy of a record's data key.

    The ledger is immutable and holds only hashes; the ciphertext may live on in backups. The
    data key exists only wrapped (HPKE) for each reader. Once every wrapped copy is destroyed —
    in the database (delete the rows) and in memory (this function overwrites the buffers it is
    given) — no one can recover the data key, so the ciphertext is permanently unreadable.
    This is the right-to-be-forgotten path. Returns how many copies were overwritten.
    """
    count = 0
    for buffer in wrapped_keys:
        if not isinstance(buffer, bytearray):
            raise TypeError("crypto_shred overwrites mutable buffers (bytearray) in place")
        buffer[:] = b"\x00" * len(buffer)
        del buffer[:]
        count += 1
    return count
