"""Crypto-shredding: once every wrapped copy of a data key is gone, the record cannot be opened."""

from __future__ import annotations

import io

import pytest
from medledger_crypto import (
    HpkePrivateKey,
    RecordContext,
    WrapContext,
    crypto_shred,
    decrypt_record,
    encrypt_record,
    unwrap_data_key,
    wrap_data_key,
)


def test_shredding_every_wrapped_key_leaves_the_ciphertext_unreadable(context: RecordContext) -> None:
    readers = [HpkePrivateKey.generate() for _ in range(2)]
    sink = io.BytesIO()
    encrypted = encrypt_record(context, io.BytesIO(b"HIV test result"), sink)
    wraps = [
        bytearray(
            wrap_data_key(
                encrypted.data_key,
                r.public_key(),
                WrapContext(context.record_id, context.version, "0x" + f"{i:02x}" * 20),
            )
        )
        for i, r in enumerate(readers)
    ]
    encrypted.data_key.destroy()  # the custodian never keeps the data key in the clear
    recovered = unwrap_data_key(bytes(wraps[0]), readers[0], WrapContext(context.record_id, 1, "0x" + "00" * 20))
    out = io.BytesIO()
    decrypt_record(context, recovered, io.BytesIO(sink.getvalue()), out)
    assert out.getvalue() == b"HIV test result"

    assert crypto_shred(wraps) == 2
    assert all(len(w) == 0 for w in wraps)
    with pytest.raises(ValueError):
        unwrap_data_key(bytes(wraps[0]), readers[0], WrapContext(context.record_id, 1, "0x" + "00" * 20))
    with pytest.raises(TypeError):
        crypto_shred([b"immutable bytes cannot be overwritten"])  # type: ignore[list-item]
