"""The member keystore can be opened from docs/member-keystore.md alone (hashlib's scrypt, AES-GCM, JSON),
without MedLedger's code: the format is documented exactly, not only implemented."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eth_account import Account
from medledger_crypto import DEV_SCRYPT, MemberIdentity

PASSPHRASE = "a member passphrase for the format test"


def open_as_documented(document: dict, passphrase: str) -> dict:
    kdf, cipher = document["kdf"], document["cipher"]
    key = hashlib.scrypt(
        passphrase.encode("utf-8"),
        salt=bytes.fromhex(kdf["salt"]),
        n=kdf["n"],
        r=kdf["r"],
        p=kdf["p"],
        dklen=32,
        maxmem=2**30,
    )
    header = {k: v for k, v in document.items() if k != "ciphertext"}
    associated = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    plaintext = AESGCM(key).decrypt(bytes.fromhex(cipher["nonce"]), bytes.fromhex(document["ciphertext"]), associated)
    return json.loads(plaintext)


def test_a_member_keystore_opens_by_the_document_alone(tmp_path: Path) -> None:
    identity = MemberIdentity.generate()
    identity.rotate_hpke()
    path = tmp_path / "member.json"
    identity.save(path, PASSPHRASE, params=DEV_SCRYPT)
    document = json.loads(path.read_text())
    assert (document["format"], document["version"], document["kind"]) == ("medledger-keystore", 1, "member")
    assert (document["kdf"]["name"], document["cipher"]["name"]) == ("scrypt", "aes-256-gcm")
    assert len(bytes.fromhex(document["kdf"]["salt"])) == 16 and len(bytes.fromhex(document["cipher"]["nonce"])) == 12
    assert path.stat().st_mode & 0o777 == 0o600
    secrets = open_as_documented(document, PASSPHRASE)
    assert Account.from_key(secrets["eth_private_key"]).address == document["address"] == identity.address
    assert [k["suite"] for k in secrets["hpke"]] == ["mlkem768-x25519", "mlkem768-x25519"]
    assert all(len(bytes.fromhex(k["private"])) == 96 for k in secrets["hpke"])
    assert bytes.fromhex(secrets["hpke"][-1]["private"]) == identity.hpke_key.private_bytes()  # the last is active


def test_the_header_is_bound_to_the_ciphertext(tmp_path: Path) -> None:
    path = tmp_path / "member.json"
    MemberIdentity.generate().save(path, PASSPHRASE, params=DEV_SCRYPT)
    document = json.loads(path.read_text())
    document["address"] = Account.create().address  # another account's name on this key
    with pytest.raises(InvalidTag):
        open_as_documented(document, PASSPHRASE)
