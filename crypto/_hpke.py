"""Wrapping record data keys for each reader with HPKE (RFC 9180, base mode).

Default suite: the hybrid post-quantum KEM ML-KEM-768 + X25519 with HKDF-SHA256 and AES-256-GCM,
because medical records must stay confidential for decades and an adversary may record today's
ciphertext to decrypt later ("harvest now, decrypt later"). DHKEM(X25519) with the same KDF and
AEAD is supported for interoperability.

Public keys: X25519 is its 32 raw bytes; the hybrid key is ML-KEM-768's 1184 bytes followed by
X25519's 32 (1216 bytes, the length the ConsortiumRegistry accepts). A key id is the first 16
bytes of SHA-256("MedLedger HPKE key id" 0x00 || suite || public key), so a member holding old
and new keys after a rotation finds the right one.

Wrapped key format, version 1::

    [0]      format version 0x01
    [1]      suite (0x01 ML-KEM-768+X25519, 0x02 X25519)
    [2:18]   key id of the recipient's public key
    [18:]    HPKE enc || ciphertext of the 32-byte data key

The HPKE ``info`` binds the wrap to its record, version and recipient::

    "MedLedger wrap v1" 0x00 || record id (32) || version uint32 BE || recipient address (20)
                             || suite (1) || key id (16)
"""

from __future__ import annotations

import enum
import hashlib
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from medledger_crypto._errors import DecryptionError, KeyIdNotFound
from medledger_crypto._record import _address
from medledger_crypto._secret import SecretHolder
from medledger_crypto._streaming import DataKey

WRAP_VERSION = 1
KEY_ID_SIZE = 16
MLKEM768_PUBLIC_SIZE = 1184
X25519_SIZE = 32
HYBRID_PUBLIC_SIZE = MLKEM768_PUBLIC_SIZE + X25519_SIZE
MLKEM_SEED_SIZE = 64


class HpkeSuite(enum.IntEnum):
    """The HPKE suites we wrap with; the value is the byte in the wrapped-key format."""

    MLKEM768_X25519 = 1
    X25519 = 2

    @property
    def label(self) -> str:
        return {HpkeSuite.MLKEM768_X25519: "mlkem768-x25519", HpkeSuite.X25519: "x25519"}[self]

    @classmethod
    def from_label(cls, label: str) -> HpkeSuite:
        for suite in cls:
            if suite.label == label:
                return suite
        raise ValueError(f"unknown HPKE suite {label!r}")

    def _suite(self) -> hpke.Suite:
        kem = hpke.KEM.MLKEM768_X25519 if self is HpkeSuite.MLKEM768_X25519 else hpke.KEM.X25519
        return hpke.Suite(kem, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


DEFAULT_SUITE = HpkeSuite.MLKEM768_X25519


def _key_id(suite: HpkeSuite, public_bytes: bytes) -> bytes:
    return hashlib.sha256(b"MedLedger HPKE key id\x00" + bytes([suite]) + public_bytes).digest()[:KEY_ID_SIZE]


#: the key objects the two suites use (cryptography's HPKE takes either)
_PublicKey = hpke.MLKEM768X25519PublicKey | x25519.X25519PublicKey
_PrivateKey = hpke.MLKEM768X25519PrivateKey | x25519.X25519PrivateKey


class HpkePublicKey:
    """A reader's HPKE public key (as published in the ConsortiumRegistry)."""

    __slots__ = ("suite", "_raw", "_key")

    def __init__(self, suite: HpkeSuite, raw: bytes, key: _PublicKey) -> None:
        self.suite, self._raw, self._key = suite, bytes(raw), key

    @classmethod
    def from_bytes(cls, raw: bytes) -> HpkePublicKey:
        """Parses a registry-encoded public key; the suite follows from its length."""
        raw = bytes(raw)
        if len(raw) == HYBRID_PUBLIC_SIZE:
            key = hpke.MLKEM768X25519PublicKey(
                mlkem.MLKEM768PublicKey.from_public_bytes(raw[:MLKEM768_PUBLIC_SIZE]),
                x25519.X25519PublicKey.from_public_bytes(raw[MLKEM768_PUBLIC_SIZE:]),
            )
            return cls(HpkeSuite.MLKEM768_X25519, raw, key)
        if len(raw) == X25519_SIZE:
            return cls(HpkeSuite.X25519, raw, x25519.X25519PublicKey.from_public_bytes(raw))
        raise ValueError(f"an HPKE public key is {HYBRID_PUBLIC_SIZE} or {X25519_SIZE} bytes, not {len(raw)}")

    def to_bytes(self) -> bytes:
        return self._raw

    @property
    def key_id(self) -> bytes:
        return _key_id(self.suite, self._raw)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HpkePublicKey) and other._raw == self._raw

    def __hash__(self) -> int:
        return hash(self._raw)

    def __repr__(self) -> str:
        return f"<HpkePublicKey {self.suite.label} id={self.key_id.hex()}>"


class HpkePrivateKey(SecretHolder):
    """A reader's HPKE private key. Shows only its suite and key id; never pickled or copied."""

    __slots__ = ("suite", "_secret", "_key", "_public")

    def __init__(self, suite: HpkeSuite, secret: bytes) -> None:
        self.suite = suite
        self._secret = bytes(secret)
        self._key: _PrivateKey
        if suite is HpkeSuite.MLKEM768_X25519:
            if len(secret) != MLKEM_SEED_SIZE + X25519_SIZE:
                raise ValueError("a hybrid private key is a 64-byte ML-KEM seed and a 32-byte X25519 key")
            kem = mlkem.MLKEM768PrivateKey.from_seed_bytes(secret[:MLKEM_SEED_SIZE])
            dh = x25519.X25519PrivateKey.from_private_bytes(secret[MLKEM_SEED_SIZE:])
            self._key = hpke.MLKEM768X25519PrivateKey(kem, dh)
            raw_public = kem.public_key().public_bytes_raw() + dh.public_key().public_bytes_raw()
        else:
            if len(secret) != X25519_SIZE:
                raise ValueError("an X25519 private key is 32 bytes")
            classic = x25519.X25519PrivateKey.from_private_bytes(secret)
            self._key = classic
            raw_public = classic.public_key().public_bytes_raw()
        self._public = HpkePublicKey.from_bytes(raw_public)

    @classmethod
    def generate(cls, suite: HpkeSuite = DEFAULT_SUITE) -> HpkePrivateKey:
        if suite is HpkeSuite.MLKEM768_X25519:
            kem = mlkem.MLKEM768PrivateKey.generate()
            dh = x25519.X25519PrivateKey.generate()
            secret = kem.private_bytes_raw() + dh.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        else:
            secret = x25519.X25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return cls(suite, secret)

    def public_key(self) -> HpkePublicKey:
        return self._public

    @property
    def key_id(self) -> bytes:
        return self._public.key_id

    def private_bytes(self) -> bytes:
        """The secret for a keystore: hybrid = ML-KEM seed (64) || X25519 key (32); X25519 = 32 bytes."""
        return self._secret

    def _public_repr(self) -> str:
        return f"{self.suite.label} id={self.key_id.hex()}"


@dataclass(frozen=True)
class WrapContext:
    """What a wrapped key is for: record, version and the recipient member's account."""

    record_id: bytes
    version: int
    recipient: str

    def info(self, suite: HpkeSuite, key_id: bytes) -> bytes:
        if len(self.record_id) != 32:
            raise ValueError("a record id is 32 bytes")
        return (
            b"MedLedger wrap v1\x00"
            + bytes(self.record_id)
            + struct.pack(">I", self.version)
            + _address(self.recipient)
            + bytes([suite])
            + key_id
        )


def wrap_data_key(data_key: DataKey, recipient_key: HpkePublicKey, context: WrapContext) -> bytes:
    """Wraps ``data_key`` for one reader; only the holder of the matching private key can unwrap it."""
    suite, key_id = recipient_key.suite, recipient_key.key_id
    sealed = suite._suite().encrypt(data_key._material(), recipient_key._key, info=context.info(suite, key_id))
    return bytes([WRAP_VERSION, suite]) + key_id + sealed


def wrapped_key_id(wrapped: bytes) -> bytes:
    """The key id a wrapped key was made for (public; used to pick the private key)."""
    if len(wrapped) < 2 + KEY_ID_SIZE or wrapped[0] != WRAP_VERSION:
        raise ValueError("not a version-1 wrapped key")
    return bytes(wrapped[2 : 2 + KEY_ID_SIZE])


def unwrap_data_key(
    wrapped: bytes,
    keys: HpkePrivateKey | Mapping[bytes, HpkePrivateKey] | Iterable[HpkePrivateKey],
    context: WrapContext,
) -> DataKey:
    """Unwraps a data key with the private key whose id the wrapped key names.

    ``keys`` is one key, a mapping key id -> key, or any collection of keys (current and
    rotated-out). Raises ``KeyIdNotFound`` if none matches, ``DecryptionError`` if the wrap was
    made for another context or altered.
    """
    key_id = wrapped_key_id(wrapped)
    try:
        suite = HpkeSuite(wrapped[1])
    except ValueError:
        raise DecryptionError() from None
    private = _find_key(keys, key_id)
    if private.suite is not suite:
        raise DecryptionError()
    try:
        material = suite._suite().decrypt(
            bytes(wrapped[2 + KEY_ID_SIZE :]), private._key, info=context.info(suite, key_id)
        )
    except Exception:  # InvalidTag, or malformed encapsulation: one opaque error
        raise DecryptionError() from None
    return DataKey(material)


def _find_key(
    keys: HpkePrivateKey | Mapping[bytes, HpkePrivateKey] | Iterable[HpkePrivateKey], key_id: bytes
) -> HpkePrivateKey:
    if isinstance(keys, HpkePrivateKey):
        candidates: Iterable[HpkePrivateKey] = [keys]
    elif isinstance(keys, Mapping):
        found = keys.get(key_id)
        if found is None:
            raise KeyIdNotFound(f"no private key with id {key_id.hex()}")
        return found
    else:
        candidates = keys
    for key in candidates:
        if key.key_id == key_id:
            return key
    raise KeyIdNotFound(f"no private key with id {key_id.hex()}")
