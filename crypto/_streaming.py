"""Streaming AEAD for record bodies: AES-256-GCM in fixed-size segments, in the style of
Tink's AES-GCM-HKDF streaming, so a 2 GB imaging study is encrypted and decrypted with memory
bounded by two segments.

Wire format, version 1 (all integers big-endian)::

    header (44 bytes)
      [0]       format version           0x01
      [1:5]     ciphertext segment size  S (32 <= S <= 16 MiB; default 1 MiB)
      [5:37]    salt                     32 random bytes
      [37:44]   nonce prefix             7 random bytes
    segments
      segment i = AES-256-GCM(K, nonce_i, plaintext_i, aad=header)
      every segment but the last carries S - 16 plaintext bytes (S bytes of ciphertext);
      the last carries 0 .. S - 16 bytes; an empty body is one empty final segment.

    K       = HKDF-SHA256(ikm=data key, salt=salt, info="MedLedger stream v1" 0x00 || associated data)
    nonce_i = nonce prefix (7) || i as uint32 (4) || 0x01 if last segment else 0x00 (1)

Associated data goes into the key derivation (as in Tink), so a ciphertext opened under other
associated data (another record, version, custodian or patient) fails at its first segment.
The segment counter and last-segment flag make reordered, dropped, duplicated or truncated
segments fail; the header is authenticated in every segment.

The content hash anchored on chain is SHA-256 over the whole ciphertext (header and
segments), computed while the ciphertext streams out: no second pass.

Decryption releases each segment only after its tag verifies, but a stream is only complete and
authentic when ``decrypt_stream`` returns: callers write to a temporary place and publish on
success (a truncated stream raises at its end).
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from medledger_crypto._errors import DecryptionError
from medledger_crypto._secret import SecretHolder

FORMAT_VERSION = 1
HEADER_SIZE = 44
TAG_SIZE = 16
DEFAULT_SEGMENT_SIZE = 1 << 20
MIN_SEGMENT_SIZE = 32
MAX_SEGMENT_SIZE = 1 << 24
MAX_SEGMENTS = 1 << 32
_INFO_PREFIX = b"MedLedger stream v1\x00"


class DataKey(SecretHolder):
    """A record version's random 256-bit data key. Never stored in the clear: only wrapped."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes | bytearray) or len(key) != 32:
            raise ValueError("a data key is exactly 32 bytes")
        self._key = bytearray(key)

    @classmethod
    def generate(cls) -> DataKey:
        return cls(os.urandom(32))

    def destroy(self) -> None:
        """Overwrites the key in memory (best effort in Python) and makes this object unusable."""
        for i in range(len(self._key)):
            self._key[i] = 0
        self._key = bytearray()

    def _material(self) -> bytes:
        if len(self._key) != 32:
            raise ValueError("this data key was destroyed")
        return bytes(self._key)

    def __eq__(self, other: object) -> bool:
        from medledger_crypto._secret import equal

        return isinstance(other, DataKey) and equal(self._material(), other._material())

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True)
class StreamResult:
    """What a streaming pass produced: sizes and the SHA-256 of the ciphertext."""

    plaintext_size: int
    ciphertext_size: int
    content_hash: bytes


def ciphertext_size(plaintext_size: int, segment_size: int = DEFAULT_SEGMENT_SIZE) -> int:
    """The exact ciphertext size for a plaintext size (for Content-Length and quotas)."""
    per = segment_size - TAG_SIZE
    segments = max(1, -(-plaintext_size // per))  # a full last segment needs no empty one after it
    return HEADER_SIZE + plaintext_size + segments * TAG_SIZE


def _segment_key(data_key: DataKey, salt: bytes, associated_data: bytes) -> AESGCM:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_INFO_PREFIX + associated_data)
    return AESGCM(hkdf.derive(data_key._material()))


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    if index >= MAX_SEGMENTS:
        raise ValueError("stream too long for one data key")
    return prefix + struct.pack(">I", index) + (b"\x01" if last else b"\x00")


def _read_exact(source: BinaryIO, size: int) -> bytes:
    """Reads ``size`` bytes, or fewer only at end of stream (pipes and sockets return short reads)."""
    chunks, remaining = [], size
    while remaining:
        chunk = source.read(remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks) if len(chunks) != 1 else chunks[0]


def encrypt_stream(
    data_key: DataKey,
    source: BinaryIO,
    sink: BinaryIO,
    associated_data: bytes,
    *,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
) -> StreamResult:
    """Encrypts ``source`` into ``sink`` and returns sizes and the ciphertext's SHA-256."""
    if not isinstance(associated_data, bytes | bytearray):
        raise TypeError("associated_data must be bytes")
    if not MIN_SEGMENT_SIZE <= segment_size <= MAX_SEGMENT_SIZE:
        raise ValueError(f"segment size must be between {MIN_SEGMENT_SIZE} and {MAX_SEGMENT_SIZE}")
    salt, prefix = os.urandom(32), os.urandom(7)
    header = struct.pack(">BI", FORMAT_VERSION, segment_size) + salt + prefix
    aead = _segment_key(data_key, salt, associated_data)
    digest = hashlib.sha256(header)
    sink.write(header)
    written = HEADER_SIZE
    plain_per_segment = segment_size - TAG_SIZE
    current = _read_exact(source, plain_per_segment)
    index = plaintext_size = 0
    while True:
        following = _read_exact(source, plain_per_segment) if len(current) == plain_per_segment else b""
        last = not following
        sealed = aead.encrypt(_nonce(prefix, index, last), current, header)
        digest.update(sealed)
        sink.write(sealed)
        written += len(sealed)
        plaintext_size += len(current)
        if last:
            return StreamResult(plaintext_size, written, digest.digest())
        current, index = following, index + 1


def decrypt_stream(data_key: DataKey, source: BinaryIO, sink: BinaryIO, associated_data: bytes) -> StreamResult:
    """Decrypts ``source`` into ``sink``; raises ``DecryptionError`` on any tampering or wrong key/AD.

    Also returns the SHA-256 of the ciphertext read, so a reader can compare it with the
    anchored content hash in the same pass.
    """
    if not isinstance(associated_data, bytes | bytearray):
        raise TypeError("associated_data must be bytes")
    header = _read_exact(source, HEADER_SIZE)
    if len(header) != HEADER_SIZE:
        raise DecryptionError()
    version, segment_size = struct.unpack(">BI", header[:5])
    if version != FORMAT_VERSION or not MIN_SEGMENT_SIZE <= segment_size <= MAX_SEGMENT_SIZE:
        raise DecryptionError()
    salt, prefix = header[5:37], header[37:44]
    aead = _segment_key(data_key, salt, associated_data)
    digest = hashlib.sha256(header)
    read = HEADER_SIZE
    current = _read_exact(source, segment_size)
    index = plaintext_size = 0
    while True:
        following = _read_exact(source, segment_size) if len(current) == segment_size else b""
        last = not following
        if len(current) < TAG_SIZE:
            raise DecryptionError()
        try:
            plain = aead.decrypt(_nonce(prefix, index, last), current, header)
        except (InvalidTag, ValueError):
            raise DecryptionError() from None
        digest.update(current)
        read += len(current)
        sink.write(plain)
        plaintext_size += len(plain)
        if last:
            return StreamResult(plaintext_size, read, digest.digest())
        current, index = following, index + 1
