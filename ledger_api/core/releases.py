"""Reading a released record: its decryption context from the release headers, and opening it.

The node that fetches from a custodian, the CLI and the tests all read the same headers; the
record's data key was wrapped for the reader, bound to record, version and reader.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import BinaryIO

from medledger_crypto import MemberIdentity, RecordContext, StreamResult, WrapContext, decrypt_record, unwrap_data_key

from ledger_api.core import headers as header_names


def release_context(headers: Mapping[str, str]) -> RecordContext:
    """The context a release was sealed under: record, version, sealing custodian, patient."""
    return RecordContext(
        record_id=bytes.fromhex(headers[header_names.RECORD_ID]),
        version=int(headers[header_names.VERSION]),
        custodian=headers.get(header_names.SEALED_BY, headers[header_names.CUSTODIAN]),
        patient=headers[header_names.PATIENT],
    )


def open_release(headers: Mapping[str, str], reader: MemberIdentity, source: BinaryIO, sink: BinaryIO) -> StreamResult:
    """Unwraps the release's data key with ``reader``'s keys and decrypts ``source`` into ``sink``."""
    context = release_context(headers)
    data_key = unwrap_data_key(
        base64.b64decode(headers[header_names.WRAPPED_KEY]),
        reader.hpke_keys(),
        WrapContext(context.record_id, context.version, reader.address),
    )
    return decrypt_record(context, data_key, source, sink)
