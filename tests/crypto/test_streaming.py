"""Streaming record encryption: round trips, tamper evidence, context binding, the content hash."""

from __future__ import annotations

import io
import struct
from dataclasses import replace

import blake3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from medledger_crypto import (
    DataKey,
    DecryptionError,
    RecordContext,
    ciphertext_size,
    decrypt_record,
    decrypt_stream,
    encrypt_record,
    encrypt_stream,
)

from tests.crypto.conftest import load_vectors

SEG = 64  # ciphertext segment size in these tests
PLAIN = SEG - 16  # plaintext per full segment
HEADER = 44


def _encrypt(data: bytes, ctx: RecordContext, segment_size: int = SEG):
    sink = io.BytesIO()
    encrypted = encrypt_record(ctx, io.BytesIO(data), sink, segment_size=segment_size)
    return encrypted, sink.getvalue()


def _decrypt(ciphertext: bytes, key: DataKey, ctx: RecordContext) -> bytes:
    sink = io.BytesIO()
    decrypt_record(ctx, key, io.BytesIO(ciphertext), sink)
    return sink.getvalue()


def _segments(ciphertext: bytes) -> tuple[bytes, list[bytes]]:
    body = ciphertext[HEADER:]
    return ciphertext[:HEADER], [body[i : i + SEG] for i in range(0, len(body), SEG)]


@pytest.mark.parametrize("size", [0, 1, PLAIN - 1, PLAIN, PLAIN + 1, 2 * PLAIN, 37 * PLAIN + 5])
def test_round_trip_at_segment_boundaries(size: int, context: RecordContext) -> None:
    data = bytes(i % 251 for i in range(size))
    encrypted, ciphertext = _encrypt(data, context)
    assert len(ciphertext) == ciphertext_size(size, SEG) == encrypted.result.ciphertext_size
    assert encrypted.result.plaintext_size == size
    assert _decrypt(ciphertext, encrypted.data_key, context) == data


def test_content_hash_is_blake3_of_the_ciphertext_in_both_directions(context: RecordContext) -> None:
    encrypted, ciphertext = _encrypt(b"lab report" * 100, context)
    assert encrypted.content_hash == blake3.blake3(ciphertext).digest()
    result = decrypt_record(context, encrypted.data_key, io.BytesIO(ciphertext), io.BytesIO())
    assert result.content_hash == encrypted.content_hash


def test_each_version_gets_a_fresh_key_and_fresh_ciphertext(context: RecordContext) -> None:
    first, c1 = _encrypt(b"same", context)
    second, c2 = _encrypt(b"same", context)
    assert first.data_key != second.data_key and c1 != c2


def test_every_single_bit_flip_is_rejected(context: RecordContext) -> None:
    encrypted, ciphertext = _encrypt(bytes(range(100)), context)
    for bit in range(len(ciphertext) * 8):
        tampered = bytearray(ciphertext)
        tampered[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(DecryptionError):
            _decrypt(bytes(tampered), encrypted.data_key, context)


def test_every_truncation_and_any_extension_is_rejected(context: RecordContext) -> None:
    encrypted, ciphertext = _encrypt(bytes(range(200)), context)
    for length in range(len(ciphertext)):
        with pytest.raises(DecryptionError):
            _decrypt(ciphertext[:length], encrypted.data_key, context)
    for extra in (b"\x00", b"\x00" * 16, b"\x00" * SEG):
        with pytest.raises(DecryptionError):
            _decrypt(ciphertext + extra, encrypted.data_key, context)


def test_reordered_dropped_and_duplicated_segments_are_rejected(context: RecordContext) -> None:
    encrypted, ciphertext = _encrypt(bytes(range(250)), context)
    header, segs = _segments(ciphertext)
    assert len(segs) == 6
    variants = {
        "swap": [segs[1], segs[0], *segs[2:]],
        "drop middle": [segs[0], *segs[2:]],
        "drop last": segs[:-1],
        "duplicate": [segs[0], segs[0], *segs[1:]],
        "last moved first": [segs[-1], *segs[:-1]],
    }
    for name, reordered in variants.items():
        with pytest.raises(DecryptionError):
            _decrypt(header + b"".join(reordered), encrypted.data_key, context)
        assert name


@pytest.mark.parametrize(
    "field,value",
    [("record_id", b"\x08" * 32), ("version", 2), ("custodian", "0x" + "ab" * 20), ("patient", "0x" + "bc" * 20)],
)
def test_ciphertext_opens_only_in_its_own_context(context: RecordContext, field: str, value: object) -> None:
    encrypted, ciphertext = _encrypt(b"imaging study", context)
    with pytest.raises(DecryptionError):
        _decrypt(ciphertext, encrypted.data_key, replace(context, **{field: value}))


def test_wrong_key_is_rejected(context: RecordContext) -> None:
    _, ciphertext = _encrypt(b"notes", context)
    with pytest.raises(DecryptionError):
        _decrypt(ciphertext, DataKey.generate(), context)


def test_header_is_authenticated_and_version_checked(context: RecordContext) -> None:
    encrypted, ciphertext = _encrypt(b"x" * 100, context)
    bigger_segments = ciphertext[:1] + struct.pack(">I", SEG * 2) + ciphertext[5:]
    unknown_version = b"\x02" + ciphertext[1:]
    absurd_segment = ciphertext[:1] + struct.pack(">I", 1 << 30) + ciphertext[5:]
    for bad in (bigger_segments, unknown_version, absurd_segment, b"", ciphertext[:HEADER]):
        with pytest.raises(DecryptionError):
            _decrypt(bad, encrypted.data_key, context)


class TrickleReader(io.RawIOBase):
    """A pipe-like source that returns at most 7 bytes per read."""

    def __init__(self, data: bytes) -> None:
        self._data, self._pos = data, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = 7 if size < 0 else min(size, 7)
        chunk = self._data[self._pos : self._pos + size]
        self._pos += len(chunk)
        return chunk


def test_short_reads_from_pipes_are_handled(context: RecordContext) -> None:
    data = bytes(range(256)) * 3
    sink = io.BytesIO()
    encrypted = encrypt_record(context, TrickleReader(data), sink, segment_size=SEG)
    assert _decrypt(sink.getvalue(), encrypted.data_key, context) == data
    out = io.BytesIO()
    decrypt_record(context, encrypted.data_key, TrickleReader(sink.getvalue()), out)
    assert out.getvalue() == data


def test_caller_mistakes_are_value_errors(context: RecordContext) -> None:
    with pytest.raises(ValueError):
        encrypt_stream(DataKey.generate(), io.BytesIO(b""), io.BytesIO(), b"ad", segment_size=16)
    with pytest.raises(TypeError):
        encrypt_stream(DataKey.generate(), io.BytesIO(b""), io.BytesIO(), "ad")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        DataKey(b"short")
    with pytest.raises(ValueError):
        RecordContext(record_id=b"\x01" * 31, version=1, custodian="0x" + "aa" * 20, patient="0x" + "bb" * 20)
    with pytest.raises(ValueError):
        replace(context, version=0)
    with pytest.raises(ValueError):
        replace(context, patient="0x1234")


def test_destroyed_data_key_cannot_be_used(context: RecordContext) -> None:
    encrypted, ciphertext = _encrypt(b"x", context)
    encrypted.data_key.destroy()
    with pytest.raises(ValueError, match="destroyed"):
        _decrypt(ciphertext, encrypted.data_key, context)


def test_committed_v1_vectors_still_open_and_tampered_copies_do_not() -> None:
    vectors = load_vectors("medledger_stream_v1.json")
    key = DataKey(bytes.fromhex(vectors["data_key"]))
    ad = bytes.fromhex(vectors["associated_data"])
    ctx = vectors["context"]
    assert (
        RecordContext(
            bytes.fromhex(ctx["record_id"]), ctx["version"], ctx["custodian"], ctx["patient"]
        ).associated_data()
        == ad
    )
    for case in vectors["cases"]:
        ciphertext = bytes.fromhex(case["ciphertext"])
        sink = io.BytesIO()
        result = decrypt_stream(key, io.BytesIO(ciphertext), sink, ad)
        assert sink.getvalue().hex() == case["plaintext"]
        assert result.content_hash.hex() == case["content_hash"]
        tampered = bytearray(ciphertext)
        tampered[-1] ^= 0x80
        with pytest.raises(DecryptionError):
            decrypt_stream(key, io.BytesIO(bytes(tampered)), io.BytesIO(), ad)


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=2000), segment_size=st.integers(min_value=32, max_value=300))
def test_any_data_round_trips_with_any_segment_size(data: bytes, segment_size: int) -> None:
    ctx = RecordContext(record_id=b"\x01" * 32, version=7, custodian="0x" + "01" * 20, patient="0x" + "02" * 20)
    encrypted, ciphertext = _encrypt(data, ctx, segment_size)
    assert len(ciphertext) == ciphertext_size(len(data), segment_size)
    assert _decrypt(ciphertext, encrypted.data_key, ctx) == data
