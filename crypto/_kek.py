"""Key-encryption keys: what makes a record's stored key material destroyable.

Why: a node stores each record's data key wrapped (HPKE) for itself, in its database. A database
cannot really forget: SQLite keeps deleted pages in its write-ahead log and free pages, PostgreSQL in
dead tuples and its WAL, and every backup keeps them too. So the wrapped key is stored *sealed*
under a per-record key-encryption key (KEK) that lives outside the database, in a small file that
erasure overwrites in place (see ``ledger_api.records.key_vault``). Destroy the KEK and every copy
of the sealed key, wherever the database left it, is noise.

Wire format of a sealed value, version 1 (byte by byte)::

    0..3    magic  b"MLK1"
    4..15   nonce  12 random bytes (made here; callers never pass one)
    16..    AES-256-GCM ciphertext of the plaintext, with its 16-byte tag at the end

The associated data (the record id, by the caller's choice) is bound but not stored: a sealed value
moved to another record fails to open.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from medledger_crypto._errors import DecryptionError
from medledger_crypto._secret import SecretHolder

MAGIC = b"MLK1"
KEY_BYTES = 32
_NONCE_BYTES = 12


class KeyEncryptionKey(SecretHolder):
    """A 256-bit key that seals small secrets (wrapped data keys) at rest."""

    __slots__ = ("_aead", "_key")

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"a key-encryption key is {KEY_BYTES} bytes, not {len(key)}")
        if key == bytes(KEY_BYTES):
            raise ValueError("an all-zero key-encryption key is an erased one")
        self._key = bytes(key)
        self._aead = AESGCM(self._key)

    @classmethod
    def generate(cls) -> KeyEncryptionKey:
        return cls(os.urandom(KEY_BYTES))

    def to_bytes(self) -> bytes:
        """The raw key, for the vault file that holds it (and nothing else)."""
        return self._key

    def seal(self, plaintext: bytes, *, associated_data: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return MAGIC + nonce + self._aead.encrypt(nonce, plaintext, associated_data)

    def open(self, sealed: bytes, *, associated_data: bytes) -> bytes:
        """The plaintext; ``ValueError`` if not a sealed value, ``DecryptionError`` if it does not open."""
        if not is_sealed(sealed):
            raise ValueError("not a value sealed under a key-encryption key (no MLK1 header)")
        nonce, body = sealed[4 : 4 + _NONCE_BYTES], sealed[4 + _NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, body, associated_data)
        except InvalidTag:
            raise DecryptionError() from None  # says nothing more: not which of key, context or value was wrong


def is_sealed(value: bytes) -> bool:
    return len(value) >= 4 + _NONCE_BYTES + 16 and value[:4] == MAGIC
