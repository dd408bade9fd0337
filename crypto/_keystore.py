"""Member identities and the passphrase-encrypted keystore file they live in.

A member identity is an Ethereum signing key (secp256k1: chain transactions and signed API
requests) plus HPKE key pairs (one active; older ones kept after rotation so records wrapped
for them can still be unwrapped).

Keystore file, format version 1 (JSON)::

    {"format": "medledger-keystore", "version": 1, "kind": "member", "address": "0x…",
     "kdf": {"name": "scrypt", "salt": hex(16), "n": 131072, "r": 8, "p": 1},
     "cipher": {"name": "aes-256-gcm", "nonce": hex(12)},
     "ciphertext": hex}

The key is scrypt(passphrase, salt, n, r, p) (memory-hard); the AES-GCM associated data is the
canonical JSON of every field but ``ciphertext``, so the address, kind and KDF parameters cannot
be swapped. The plaintext is JSON: the Ethereum key and the HPKE keys with their suites.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from eth_account import Account
from eth_account.signers.local import LocalAccount
from medledger_crypto._errors import KeystoreError, WeakPassphrase
from medledger_crypto._hpke import DEFAULT_SUITE, HpkePrivateKey, HpkePublicKey, HpkeSuite
from medledger_crypto._secret import SecretHolder

KEYSTORE_FORMAT = "medledger-keystore"
KEYSTORE_VERSION = 1
PASSPHRASE_ENV = "MEDLEDGER_KEYSTORE_PASSPHRASE"


@dataclass(frozen=True)
class ScryptParams:
    """scrypt cost. Production: n=2**17 (128 MiB, ~0.4 s). Dev/test may lower it, never below 2**14."""

    n: int = 2**17
    r: int = 8
    p: int = 1

    def __post_init__(self) -> None:
        if self.n < 2**14 or self.n & (self.n - 1) or self.r < 8 or self.p < 1:
            raise ValueError("scrypt parameters too weak: need n >= 2**14 (power of two), r >= 8, p >= 1")


PRODUCTION_SCRYPT = ScryptParams()
DEV_SCRYPT = ScryptParams(n=2**14)

_COMMON = {"password", "passphrase", "changeme", "letmein", "qwerty", "123456", "admin", "medledger", "hospital"}


def check_passphrase(passphrase: str, *, dev_mode: bool) -> None:
    """Refuses empty passphrases always, and weak ones outside dev mode (``WeakPassphrase``).

    Weak: shorter than 12 characters, fewer than 6 distinct characters, or built on a common word.
    """
    if not passphrase:
        raise WeakPassphrase("the keystore passphrase is empty")
    if dev_mode:
        return
    lowered = passphrase.lower()
    if len(passphrase) < 12:
        raise WeakPassphrase("the keystore passphrase must have at least 12 characters")
    if len(set(passphrase)) < 6:
        raise WeakPassphrase("the keystore passphrase repeats too few characters")
    if any(word in lowered for word in _COMMON) and len(passphrase) < 20:
        raise WeakPassphrase("the keystore passphrase is built on a common word")


def load_passphrase(*, file: Path | None = None, env: str = PASSPHRASE_ENV) -> str:
    """The passphrase from a file (first line; preferred, e.g. a mounted secret) or an env variable."""
    if file is not None:
        try:
            return file.read_text(encoding="utf-8").splitlines()[0] if file.stat().st_size else ""
        except OSError as exc:
            raise KeystoreError(f"cannot read passphrase file {file}: {exc.strerror}") from None
    return os.environ.get(env, "")


def _header_ad(header: dict[str, Any]) -> bytes:
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode()


def seal_keystore(
    kind: str,
    address: str,
    secrets: dict[str, Any],
    passphrase: str,
    *,
    dev_mode: bool = False,
    params: ScryptParams = PRODUCTION_SCRYPT,
) -> dict[str, Any]:
    """Encrypts ``secrets`` under ``passphrase`` into a keystore document."""
    check_passphrase(passphrase, dev_mode=dev_mode)
    salt, nonce = os.urandom(16), os.urandom(12)
    header = {
        "format": KEYSTORE_FORMAT,
        "version": KEYSTORE_VERSION,
        "kind": kind,
        "address": address,
        "kdf": {"name": "scrypt", "salt": salt.hex(), "n": params.n, "r": params.r, "p": params.p},
        "cipher": {"name": "aes-256-gcm", "nonce": nonce.hex()},
    }
    key = Scrypt(salt=salt, length=32, n=params.n, r=params.r, p=params.p).derive(passphrase.encode())
    ciphertext = AESGCM(key).encrypt(nonce, json.dumps(secrets).encode(), _header_ad(header))
    return {**header, "ciphertext": ciphertext.hex()}


def open_keystore(document: dict[str, Any], passphrase: str, *, kind: str) -> dict[str, Any]:
    """Decrypts a keystore document; ``KeystoreError`` for a wrong passphrase, kind or format."""
    try:
        if document["format"] != KEYSTORE_FORMAT or document["version"] != KEYSTORE_VERSION:
            raise KeystoreError(f"unsupported keystore format {document.get('format')} v{document.get('version')}")
        if document["kind"] != kind:
            raise KeystoreError(f"this keystore holds a {document['kind']} identity, not a {kind}")
        kdf, cipher = document["kdf"], document["cipher"]
        if kdf["name"] != "scrypt" or cipher["name"] != "aes-256-gcm":
            raise KeystoreError("unsupported keystore algorithms")
        params = ScryptParams(n=int(kdf["n"]), r=int(kdf["r"]), p=int(kdf["p"]))
        header = {k: v for k, v in document.items() if k != "ciphertext"}
        key = Scrypt(salt=bytes.fromhex(kdf["salt"]), length=32, n=params.n, r=params.r, p=params.p).derive(
            passphrase.encode()
        )
        plaintext = AESGCM(key).decrypt(
            bytes.fromhex(cipher["nonce"]), bytes.fromhex(document["ciphertext"]), _header_ad(header)
        )
        opened: dict[str, Any] = json.loads(plaintext)
        return opened
    except InvalidTag:
        raise KeystoreError("wrong passphrase, or the keystore was altered") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise KeystoreError(f"malformed keystore: {exc}") from None


def write_private_file(path: Path, document: dict[str, Any]) -> None:
    """Writes a keystore atomically with mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2)
    os.replace(tmp, path)


def read_document(path: Path) -> dict[str, Any]:
    try:
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return document
    except FileNotFoundError:
        raise KeystoreError(f"no keystore at {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise KeystoreError(f"{path} is not a keystore (not JSON)") from None


class MemberIdentity(SecretHolder):
    """A member hospital's keys: Ethereum account + HPKE keys (the last one is active)."""

    __slots__ = ("account", "_hpke", "_created")

    def __init__(self, account: LocalAccount, hpke_keys: list[HpkePrivateKey], created: list[int]) -> None:
        if not hpke_keys:
            raise ValueError("a member identity needs at least one HPKE key")
        self.account = account
        self._hpke = list(hpke_keys)
        self._created = list(created)

    @classmethod
    def generate(cls, suite: HpkeSuite = DEFAULT_SUITE) -> MemberIdentity:
        return cls(Account.create(), [HpkePrivateKey.generate(suite)], [int(time.time())])

    @property
    def address(self) -> str:
        return self.account.address

    @property
    def hpke_key(self) -> HpkePrivateKey:
        """The active HPKE key: new records are wrapped for its public key."""
        return self._hpke[-1]

    @property
    def hpke_public_key(self) -> HpkePublicKey:
        return self.hpke_key.public_key()

    def hpke_keys(self) -> dict[bytes, HpkePrivateKey]:
        """Every HPKE key held, current and rotated-out, by key id (for unwrapping old records)."""
        return {key.key_id: key for key in self._hpke}

    def rotate_hpke(self, suite: HpkeSuite = DEFAULT_SUITE) -> HpkePrivateKey:
        """Adds a new active HPKE key; old keys stay, so records wrapped for them still open."""
        key = HpkePrivateKey.generate(suite)
        self._hpke.append(key)
        self._created.append(int(time.time()))
        return key

    def _public_repr(self) -> str:
        return f"{self.address} hpke={self.hpke_key.key_id.hex()} keys={len(self._hpke)}"

    # -- persistence ---------------------------------------------------------------------------
    def save(
        self, path: Path, passphrase: str, *, dev_mode: bool = False, params: ScryptParams = PRODUCTION_SCRYPT
    ) -> None:
        secrets = {
            "eth_private_key": self.account.key.hex(),
            "hpke": [
                {"suite": k.suite.label, "private": k.private_bytes().hex(), "created_at": c}
                for k, c in zip(self._hpke, self._created, strict=True)
            ],
        }
        write_private_file(
            path, seal_keystore("member", self.address, secrets, passphrase, dev_mode=dev_mode, params=params)
        )

    @classmethod
    def load(cls, path: Path, passphrase: str) -> MemberIdentity:
        document = read_document(path)
        secrets = open_keystore(document, passphrase, kind="member")
        try:
            account = Account.from_key(bytes.fromhex(secrets["eth_private_key"].removeprefix("0x")))
            keys = [
                HpkePrivateKey(HpkeSuite.from_label(k["suite"]), bytes.fromhex(k["private"])) for k in secrets["hpke"]
            ]
            created = [int(k["created_at"]) for k in secrets["hpke"]]
        except (KeyError, ValueError) as exc:
            raise KeystoreError(f"malformed keystore contents: {exc}") from None
        if account.address != document["address"]:
            raise KeystoreError("keystore address does not match its key")
        return cls(account, keys, created)
