"""``medledger patient export`` and ``verify-export``: every own record, from every member, in one archive.

The patient signs in at one node (allowing the consortium-wide view), lists their records at every
member, and takes each one's latest version as their own copy: the data key wrapped for a hybrid
ML-KEM-768 + X25519 key made here for this export, which never leaves this process. Each record is
decrypted here and written to the archive (``records.export_archive``) with its ciphertext and key,
so ``verify-export`` can check it against the chain without any node.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, BinaryIO

import httpx
from medledger_crypto import HpkePrivateKey, RecordContext, WrapContext, decrypt_record, unwrap_data_key

from ledger_api.cli.client import check
from ledger_api.core import headers as header_names
from ledger_api.records.export_archive import ArchiveWriter


def export_records(
    client: httpx.Client,
    account: str,
    sink: BinaryIO,
    *,
    reader: str | None = None,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> dict[str, Any]:
    """Writes the archive of ``account``'s records to ``sink`` and returns what was (and was not) reached.
    ``client``: a session of the key that signs for ``reader``, the patient's account (the default) or a
    delegate's whose scope lets them see the patient's records; the custodians wrap each key for it."""
    overview = check(client.get(f"/v1/patients/{account}/overview/records")).json()
    domain = check(client.get(f"/v1/patients/{account}/signing-domain")).json()
    reader_account = reader or account
    reader_private = HpkePrivateKey.generate()
    reader_key = base64.b64encode(reader_private.public_key().to_bytes()).decode()
    records = [r for r in overview["records"] if not r["erased"] and r["latest_version"] >= 1]
    writer = ArchiveWriter(
        sink,
        patient=account,
        chain_id=int(domain["chain_id"]),
        exported_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    )
    for done, record in enumerate(records, start=1):
        response = check(
            client.get(
                f"/v1/patients/{account}/records/{record['id']}/content", headers={header_names.READER_KEY: reader_key}
            )
        )
        h = response.headers
        version = int(h[header_names.VERSION])
        record_id = bytes.fromhex(record["id"])
        data_key = unwrap_data_key(
            base64.b64decode(h[header_names.WRAPPED_KEY]),
            reader_private,
            WrapContext(record_id, version, reader_account),
        )
        key_bytes = bytes(data_key._material())
        context = RecordContext(
            record_id=record_id,
            version=version,
            custodian=h.get(header_names.SEALED_BY, h[header_names.CUSTODIAN]),
            patient=h[header_names.PATIENT],
        )
        plaintext = io.BytesIO()
        decrypt_record(context, data_key, io.BytesIO(response.content), plaintext)
        writer.add(
            {
                "record_id": record["id"],
                "version": version,
                "patient": record["patient"],
                "custodian": record["custodian"],
                "custodian_name": record.get("custodian_name", ""),
                "sealed_by": context.custodian,
                "category": record["category"],
                "media_type": record["media_type"],
                "fhir_resource_type": record.get("fhir_resource_type"),
                "created_at": record["created_at"],
                "retention_until": record.get("retention_until"),
                "restricted": record.get("restricted", False),
                "content_hash": h[header_names.CONTENT_HASH],
                "subject_salt": record.get("subject_salt") or "",
                "encounter_date": record.get("encounter_date"),
            },
            response.content,
            plaintext.getvalue(),
            key_bytes,
        )
        progress(done, len(records))
    writer.consents = check(client.get(f"/v1/patients/{account}/consents")).json()
    versions = sorted({c["notice_version"] for c in writer.consents if c.get("notice_version")})
    writer.notices = [check(client.get(f"/v1/privacy-notice/{v}")).json() for v in versions]
    writer.close()
    return {"records": len(records), "members": overview["members"]}
