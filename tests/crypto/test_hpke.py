"""Key wrapping with HPKE: published vectors, our own format's vectors, context binding, rotation."""

from __future__ import annotations

from dataclasses import replace

import pytest
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import x25519
from medledger_crypto import (
    DataKey,
    DecryptionError,
    HpkePrivateKey,
    HpkePublicKey,
    HpkeSuite,
    KeyIdNotFound,
    WrapContext,
    unwrap_data_key,
    wrap_data_key,
    wrapped_key_id,
)

from tests.crypto.conftest import load_vectors

CONTEXT = WrapContext(record_id=b"\x05" * 32, version=2, recipient="0x" + "cc" * 20)


def test_rfc9180_a1_1_vector_opens_with_the_library_we_build_on() -> None:
    """The X25519 KEM and HKDF-SHA256 key schedule match RFC 9180 (published vector, with its aad)."""
    v = load_vectors("rfc9180_a1_1.json")
    secret = x25519.X25519PrivateKey.from_private_bytes(bytes.fromhex(v["skRm"]))
    assert secret.public_key().public_bytes_raw().hex() == v["pkRm"]
    suite = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_128_GCM)
    sealed = bytes.fromhex(v["enc"] + v["ct"])
    from cryptography.hazmat.bindings._rust import openssl as rust_openssl  # aad is only exposed here

    plain = rust_openssl.hpke._decrypt_with_aad(
        suite, sealed, secret, info=bytes.fromhex(v["info"]), aad=bytes.fromhex(v["aad"])
    )
    assert plain.hex() == v["pt"]
    tampered = bytearray(sealed)
    tampered[40] ^= 1
    with pytest.raises(Exception):  # noqa: B017 - InvalidTag
        rust_openssl.hpke._decrypt_with_aad(
            suite, bytes(tampered), secret, info=bytes.fromhex(v["info"]), aad=bytes.fromhex(v["aad"])
        )


def test_committed_wrap_vectors_still_unwrap() -> None:
    vectors = load_vectors("medledger_wrap_v1.json")
    ctx = vectors["context"]
    context = WrapContext(bytes.fromhex(ctx["record_id"]), ctx["version"], ctx["recipient"])
    for case in vectors["cases"]:
        key = HpkePrivateKey(HpkeSuite.from_label(case["suite"]), bytes.fromhex(case["private_key"]))
        assert key.public_key().to_bytes().hex() == case["public_key"]
        assert key.key_id.hex() == case["key_id"]
        wrapped = bytes.fromhex(case["wrapped"])
        assert unwrap_data_key(wrapped, key, context) == DataKey(bytes.fromhex(vectors["data_key"]))
        tampered = bytearray(wrapped)
        tampered[-1] ^= 1
        with pytest.raises(DecryptionError):
            unwrap_data_key(bytes(tampered), key, context)


@pytest.mark.parametrize("suite", list(HpkeSuite))
def test_wrap_round_trip_and_sizes(suite: HpkeSuite) -> None:
    key = HpkePrivateKey.generate(suite)
    data_key = DataKey.generate()
    wrapped = wrap_data_key(data_key, key.public_key(), CONTEXT)
    assert wrapped[0] == 1 and wrapped[1] == suite and wrapped_key_id(wrapped) == key.key_id
    assert unwrap_data_key(wrapped, key, CONTEXT) == data_key
    expected_public = 1216 if suite is HpkeSuite.MLKEM768_X25519 else 32
    assert len(key.public_key().to_bytes()) == expected_public


def test_hybrid_is_the_default_suite() -> None:
    assert HpkePrivateKey.generate().suite is HpkeSuite.MLKEM768_X25519


@pytest.mark.parametrize("field,value", [("record_id", b"\x06" * 32), ("version", 3), ("recipient", "0x" + "dd" * 20)])
def test_wrap_opens_only_for_its_record_version_and_recipient(field: str, value: object) -> None:
    key = HpkePrivateKey.generate()
    wrapped = wrap_data_key(DataKey.generate(), key.public_key(), CONTEXT)
    with pytest.raises(DecryptionError):
        unwrap_data_key(wrapped, key, replace(CONTEXT, **{field: value}))


def test_wrong_recipient_key_is_rejected() -> None:
    alice, bob = HpkePrivateKey.generate(), HpkePrivateKey.generate()
    wrapped = wrap_data_key(DataKey.generate(), alice.public_key(), CONTEXT)
    with pytest.raises(KeyIdNotFound):
        unwrap_data_key(wrapped, bob, CONTEXT)
    # even if the key id is forged to point at bob's key, bob cannot open alice's wrap
    forged = wrapped[:2] + bob.key_id + wrapped[18:]
    with pytest.raises(DecryptionError):
        unwrap_data_key(forged, bob, CONTEXT)


def test_every_byte_of_a_wrapped_key_is_protected() -> None:
    key = HpkePrivateKey.generate(HpkeSuite.X25519)
    wrapped = wrap_data_key(DataKey.generate(), key.public_key(), CONTEXT)
    for i in range(len(wrapped)):
        tampered = bytearray(wrapped)
        tampered[i] ^= 0x01
        with pytest.raises((DecryptionError, KeyIdNotFound, ValueError)):
            unwrap_data_key(bytes(tampered), key, CONTEXT)


def test_rotated_keys_are_found_by_key_id() -> None:
    old, new = HpkePrivateKey.generate(), HpkePrivateKey.generate(HpkeSuite.X25519)
    data_key = DataKey.generate()
    from_old = wrap_data_key(data_key, old.public_key(), CONTEXT)
    from_new = wrap_data_key(data_key, new.public_key(), CONTEXT)
    keyring = {k.key_id: k for k in (old, new)}
    assert unwrap_data_key(from_old, keyring, CONTEXT) == data_key
    assert unwrap_data_key(from_new, [old, new], CONTEXT) == data_key
    with pytest.raises(KeyIdNotFound):
        unwrap_data_key(from_old, {new.key_id: new}, CONTEXT)


def test_public_keys_parse_from_registry_bytes() -> None:
    key = HpkePrivateKey.generate()
    parsed = HpkePublicKey.from_bytes(key.public_key().to_bytes())
    assert parsed == key.public_key() and parsed.key_id == key.key_id and parsed.suite is HpkeSuite.MLKEM768_X25519
    assert "HpkePublicKey mlkem768-x25519" in repr(parsed)
    for bad_length in (0, 31, 33, 1184, 1215):
        with pytest.raises(ValueError):
            HpkePublicKey.from_bytes(b"\x01" * bad_length)
    with pytest.raises(ValueError):
        wrapped_key_id(b"\x02" + b"\x00" * 40)
