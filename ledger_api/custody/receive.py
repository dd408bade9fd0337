"""The successor's side of a handover: accept a record version only if the chain and the bytes agree.

The leaving custodian pushes each version: ciphertext as the body, the media type in the signed
query, and in headers the patient, category and subject salt (which open the anchor's commitment)
and the data key wrapped for this node's HPKE key. Before anything is stored this node checks that
the caller is the record's custodian on chain, that patient, category and salt open the anchored
subject commitment (so a leaving member cannot relabel a record), that the bytes hash
to the anchored content hash, and that the wrapped key opens the ciphertext (a full decryption
into nothing): a successor never takes custody of something it could not serve.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import Any

import blake3
from anyio.to_thread import run_sync
from medledger_crypto import DecryptionError, RecordContext, WrapContext, decrypt_record, unwrap_data_key
from sqlmodel import select

from ledger_api.auth import policy
from ledger_api.auth.caller import Caller
from ledger_api.chain.calldata import checksum_address
from ledger_api.chain.commitments import opens
from ledger_api.chain.days import LAST_DAY, day_number
from ledger_api.chain.types import RecordInfo
from ledger_api.core.db import session_scope
from ledger_api.custody import agreements
from ledger_api.errors import (
    BadRequest,
    Conflict,
    ContractReverted,
    Forbidden,
    InvalidValue,
    PayloadTooLarge,
    Unauthenticated,
)
from ledger_api.node import Node
from ledger_api.records.blobs import blob_path
from ledger_api.records.models import Custody, Record, RecordVersion, WrappedKey
from ledger_api.records.retention import retention_end


class _Discard:
    """A sink that keeps nothing: the trial decryption only proves the key opens the ciphertext."""

    def write(self, data: bytes | memoryview) -> int:
        return len(data)


async def receive_version(
    node: Node,
    caller: Caller,
    body: AsyncIterator[bytes],
    *,
    record_id: str,
    version: int,
    patient: str,
    category: int,
    subject_salt: str,
    media_type: str,
    fhir_resource_type: str | None,
    sealed_by: str,
    wrapped_key_b64: str,
    declared_sha256: str | None,
    record_kind: str = "other",
    last_encounter: date | None = None,
    encounter_date: date | None = None,
) -> dict[str, Any]:
    """Stores one handed-over version (idempotent: the same version again is acknowledged, not stored twice)."""
    policy.require(policy.ANOTHER_MEMBER, node, caller)
    try:
        wrapped = base64.b64decode(wrapped_key_b64, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(
            "X-MedLedger-Wrapped-Key is not base64", field="x-medledger-wrapped-key", code="header-malformed"
        ) from None
    _, content_hash, present, new_record = await run_sync(
        _check_anchor, node, caller, record_id, version, patient, category, subject_salt, encounter_date
    )
    if present:
        return {"record_id": record_id, "version": version, "stored": False}  # the body is not read at all
    restricted = await run_sync(node.chain.records.is_restricted, bytes.fromhex(record_id))
    hidden = await run_sync(node.chain.records.is_hidden, bytes.fromhex(record_id))
    room = await run_sync(partial(agreements.room_for, node, caller.address, new_record=new_record))
    node.blob_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".handover-", dir=node.blob_dir)
    incoming = Path(name)
    limit = min(node.settings.limits.max_upload_bytes, room)
    try:
        digest, signed, size = blake3.blake3(), hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as sink:
            async for chunk in body:
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(
                        f"this version exceeds the {limit} bytes the node takes (the agreed "
                        "handover's remaining quota, or the size of any record)",
                        code="upload-too-large",
                    )
                digest.update(chunk)
                signed.update(chunk)
                sink.write(chunk)
        if declared_sha256 is None or not hmac.compare_digest(signed.hexdigest(), declared_sha256):
            raise Unauthenticated("body does not match the signed content digest", code="body-digest-mismatch")
        if not hmac.compare_digest(digest.hexdigest(), content_hash):
            raise InvalidValue(
                "the handed-over ciphertext does not match the hash anchored on chain",
                field="body",
                code="ciphertext-mismatch",
            )
        context = RecordContext(
            record_id=bytes.fromhex(record_id),
            version=version,
            custodian=checksum_address(sealed_by),
            patient=checksum_address(patient),
        )
        plaintext_size = await run_sync(_trial_decrypt, node, context, wrapped, incoming)
        await run_sync(
            partial(
                _store_received,
                node,
                caller,
                record_id,
                version,
                checksum_address(patient),
                category,
                subject_salt,
                media_type,
                fhir_resource_type,
                context.custodian,
                content_hash,
                plaintext_size,
                size,
                wrapped,
                incoming,
                new_record,
                (record_kind, last_encounter, encounter_date, restricted, hidden),
            )
        )
    finally:
        incoming.unlink(missing_ok=True)
    return {"record_id": record_id, "version": version, "stored": True}


def _check_anchor(
    node: Node,
    caller: Caller,
    record_id: str,
    version: int,
    patient: str,
    category: int,
    salt: str,
    encounter_date: date | None,
) -> tuple[RecordInfo, str, bool, bool]:
    """The chain's view of the version; whether it is stored here already (same hash) or not."""
    record_bytes = bytes.fromhex(record_id)
    try:
        anchored = node.chain.records.record(record_bytes)
        content_hash = node.chain.records.content_hash(record_bytes, version).hex()
    except ContractReverted:
        raise InvalidValue(
            f"record {record_id} version {version} is not anchored on chain", field="record_id", code="anchor-missing"
        ) from None
    if anchored.custodian != caller.address:
        raise Forbidden(
            f"the chain names {anchored.custodian}, not the caller, as this record's custodian",
            code="not-the-custodian",
        )
    if encounter_date is not None and encounter_date > LAST_DAY:
        raise InvalidValue(
            f"X-MedLedger-Encounter-Date: after the last day the chain counts ({LAST_DAY})",
            field="x-medledger-encounter-date",
            code="anchor-mismatch",
        )
    if not opens(anchored.subject, record_bytes, patient, category, bytes.fromhex(salt), day_number(encounter_date)):
        raise InvalidValue(
            "patient, category, day of care and salt do not open the record's anchored subject commitment",
            field="patient",
            code="anchor-mismatch",
        )
    with session_scope(node.engine) as session:
        record = session.get(Record, record_id)
        existing = session.exec(
            select(RecordVersion).where(RecordVersion.record_id == record_id, RecordVersion.version == version)
        ).first()
    if record is not None and record.custody != Custody.INCOMING:
        raise Conflict(
            f"record {record_id} was held here before; a handover back is not supported",
            code="custody-return-unsupported",
        )
    if existing is not None and not hmac.compare_digest(existing.content_hash, content_hash):
        raise Conflict("a different version is already stored under this id", code="version-differs")
    return anchored, content_hash, existing is not None, record is None


def _trial_decrypt(node: Node, context: RecordContext, wrapped: bytes, path: Path) -> int:
    try:
        data_key = unwrap_data_key(
            wrapped, node.identity.hpke_keys(), WrapContext(context.record_id, context.version, node.address)
        )
        try:
            with open(path, "rb") as source:
                return decrypt_record(context, data_key, source, _Discard()).plaintext_size  # type: ignore[arg-type]
        finally:
            data_key.destroy()
    except (DecryptionError, ValueError, KeyError) as exc:
        raise InvalidValue(
            f"the wrapped key does not open this version: {type(exc).__name__}",
            field="x-medledger-wrapped-key",
            code="wrapped-key-invalid",
        ) from None


def _store_received(
    node: Node,
    caller: Caller,
    record_id: str,
    version: int,
    patient: str,
    category: int,
    subject_salt: str,
    media_type: str,
    fhir_resource_type: str | None,
    sealed_by: str,
    content_hash: str,
    plaintext_size: int,
    ciphertext_size: int,
    wrapped: bytes,
    incoming: Path,
    new_record: bool,
    keeping: tuple[str, date | None, date | None, bool, bool],
) -> None:
    """``keeping``: the record's kind, last encounter, day of care and the chain's restriction and hiding of it."""
    record_kind, last_encounter, encounter_date, restricted, hidden = keeping
    final = blob_path(node, record_id, version)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(incoming, final)
    moment = datetime.now(UTC)
    try:
        with session_scope(node.engine) as session:
            record = session.get(Record, record_id)
            if record is None:
                record = Record(
                    id=record_id,
                    patient=patient,
                    category=category,
                    media_type=media_type,
                    fhir_resource_type=fhir_resource_type,
                    custodian=node.address,
                    created_at=moment,
                    custody=Custody.INCOMING,
                    custody_counterpart=caller.address,
                    subject_salt=subject_salt,
                    record_kind=record_kind,
                    last_encounter=last_encounter,
                    retention_until=retention_end(node.settings.retention, record_kind, last_encounter)
                    if last_encounter
                    else None,
                    encounter_date=encounter_date,
                )
            if hidden and not record.hidden:
                record.hidden, record.hidden_since = True, moment
            if restricted and not record.restricted:
                record.restricted, record.restricted_since = True, moment
            elif record.custody != Custody.INCOMING:
                raise Conflict(
                    f"record {record_id} was held here before; a handover back is not supported",
                    code="custody-return-unsupported",
                )
            record.latest_version = max(record.latest_version, version)
            agreements.count_received(session, caller.address, new_record=new_record, size=ciphertext_size)
            session.add(record)
            session.flush()
            session.add(
                RecordVersion(
                    record_id=record_id,
                    version=version,
                    content_hash=content_hash,
                    plaintext_size=plaintext_size,
                    ciphertext_size=ciphertext_size,
                    blob_name=final.name,
                    created_at=moment,
                    sealed_by=sealed_by,
                )
            )
            session.add(
                WrappedKey(
                    record_id=record_id,
                    version=version,
                    recipient=node.address,
                    key_id=node.identity.hpke_public_key.key_id.hex(),
                    wrapped=node.key_vault.seal(record_id, wrapped),
                )
            )
    except BaseException:
        final.unlink(missing_ok=True)
        raise
