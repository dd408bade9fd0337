"""The archive of all a patient's records ("download all my records"), and its check against the chain.

One ZIP file, the same whether the portal (in the browser) or ``medledger patient export`` made it::

    manifest.json        format "medledger-export/1": the patient, when, the chain id, and per record:
                         id, version, custodian, the
                         sealing custodian, category, media type, FHIR resource type, retention end,
                         restriction, the anchored content hash, the salt that opens the anchor's
                         subject commitment, the version's data key, and the two files below
                         and the patient's consents (the members each names, scope, window, days of
                         care, and the version and SHA-256 of the privacy notice it was signed under)
    bundle.json          a FHIR R4 Bundle (type collection): each FHIR record as its resource; every
                         other record as a DocumentReference whose attachment points at its file
    privacy-notices/v<n>.json   each privacy notice a consent was signed under: its text in English and
                         Chinese and its SHA-256 (the words the patient agreed to)
    files/<id>-v<n>.<ext>       the plaintext
    ciphertext/<id>-v<n>.bin    the ciphertext exactly as anchored

Why the ciphertext and the data key are in it: with them anyone (the patient, a lawyer, a court) can
check without trusting any node that the anchored hash on chain is the hash of this ciphertext, that it
decrypts under its context to exactly this file, and that the anchor's commitment opens to this patient
and category (``verify_archive``). The data key opens only this archive's own ciphertext.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import blake3
from medledger_crypto import DataKey, RecordContext, decrypt_record

from ledger_api.chain.commitments import record_subject
from ledger_api.chain.days import day_number
from ledger_api.notice.service import notice_hash

FORMAT = "medledger-export/1"
_EXTENSIONS = {
    "application/pdf": "pdf",
    "application/json": "json",
    "application/fhir+json": "json",
    "text/plain": "txt",
    "image/png": "png",
    "image/jpeg": "jpg",
    "application/dicom": "dcm",
}


def file_name(record_id: str, version: int, media_type: str) -> str:
    return f"{record_id}-v{version}.{_EXTENSIONS.get(media_type, 'bin')}"


def fhir_entry(record: dict[str, Any], plaintext: bytes) -> dict[str, Any]:
    """The record as a Bundle entry: its own resource when it is FHIR JSON, else a DocumentReference."""
    if record.get("fhir_resource_type"):
        try:
            resource = json.loads(plaintext)
            if isinstance(resource, dict) and resource.get("resourceType") == record["fhir_resource_type"]:
                return {"fullUrl": f"urn:uuid:{_uuid(record['record_id'])}", "resource": resource}
        except ValueError:
            pass  # declared FHIR but not FHIR JSON: kept as a document
    document = {
        "resourceType": "DocumentReference",
        "status": "current",
        "identifier": [{"system": "urn:medledger:record", "value": f"{record['record_id']}/v{record['version']}"}],
        "subject": {"identifier": {"system": "urn:medledger:patient", "value": record["patient"]}},
        "custodian": {"display": record.get("custodian_name") or record["custodian"]},
        "date": record["created_at"],
        "content": [
            {
                "attachment": {
                    "contentType": record["media_type"],
                    "url": record["file"],
                    "size": len(plaintext),
                    "hash": base64.b64encode(hashlib.sha1(plaintext).digest()).decode(),  # FHIR: SHA-1, base64
                    "title": record["file"].rsplit("/", 1)[-1],
                }
            }
        ],
    }
    return {"fullUrl": f"urn:uuid:{_uuid(record['record_id'])}", "resource": document}


def _uuid(record_id: str) -> str:
    """A stable RFC 4122 UUID (version 4 layout) from a record id, for the Bundle's fullUrl."""
    raw = bytearray(bytes.fromhex(record_id)[:16])
    raw[6], raw[8] = (raw[6] & 0x0F) | 0x40, (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass
class ArchiveWriter:
    """Builds the archive record by record, in memory or into a file object."""

    sink: Any
    patient: str
    chain_id: int
    exported_at: str
    records: list[dict[str, Any]] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)
    #: the patient's consents as ``GET /v1/patients/{patient}/consents`` lists them
    consents: list[dict[str, Any]] = field(default_factory=list)
    #: the privacy notices they were signed under, as ``GET /v1/privacy-notice/{version}`` gives them
    notices: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._zip = zipfile.ZipFile(self.sink, "w", compression=zipfile.ZIP_STORED)

    def add(self, record: dict[str, Any], ciphertext: bytes, plaintext: bytes, data_key: bytes) -> None:
        """``record``: the listing's view of the record (plus ``version``, ``sealed_by``, ``custodian_name``)."""
        name = file_name(record["record_id"], record["version"], record["media_type"])
        entry = {
            **record,
            "file": f"files/{name}",
            "ciphertext": f"ciphertext/{name.rsplit('.', 1)[0]}.bin",
            "data_key": data_key.hex(),
            "plaintext_sha256": hashlib.sha256(plaintext).hexdigest(),
            "size": len(plaintext),
        }
        self._zip.writestr(entry["file"], plaintext)
        self._zip.writestr(entry["ciphertext"], ciphertext)
        self.records.append(entry)
        self.entries.append(fhir_entry(entry, plaintext))

    def close(self) -> None:
        manifest = {
            "format": FORMAT,
            "patient": self.patient,
            "exported_at": self.exported_at,
            "chain_id": self.chain_id,
            "records": self.records,
            "consents": self.consents,
            "privacy_notices": [f"privacy-notices/v{n['version']}.json" for n in self.notices],
        }
        for notice in self.notices:
            kept = {"version": notice["version"], "sha256": notice["sha256"], "text": notice["text"]}
            self._zip.writestr(
                f"privacy-notices/v{notice['version']}.json", json.dumps(kept, indent=2, ensure_ascii=False)
            )
        bundle = {"resourceType": "Bundle", "type": "collection", "timestamp": self.exported_at, "entry": self.entries}
        self._zip.writestr("manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False))
        self._zip.writestr("bundle.json", json.dumps(bundle, indent=2, ensure_ascii=False))
        self._zip.close()


@dataclass
class RecordCheck:
    record_id: str
    version: int
    problems: list[str]


class _Sink(io.BytesIO):
    pass


def verify_archive(archive: bytes | Any, chain_records: Any) -> list[RecordCheck]:
    """Checks every record of an archive against the chain (``chain_records``: a RecordRegistry client):
    the anchored hash is the ciphertext's, the ciphertext decrypts to the file, and the anchor's subject
    commitment opens to the manifest's patient and category. One ``RecordCheck`` per record."""
    try:
        z = zipfile.ZipFile(io.BytesIO(archive) if isinstance(archive, bytes) else archive)
    except zipfile.BadZipFile:
        raise ValueError("not a ZIP archive") from None
    with z:
        try:
            manifest = json.loads(z.read("manifest.json"))
        except KeyError:
            raise ValueError("the archive has no manifest.json") from None
        except ValueError:
            raise ValueError("manifest.json is not JSON") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} archive")
        patient, records = manifest.get("patient"), manifest.get("records")
        if not isinstance(patient, str) or not isinstance(records, list):
            raise ValueError("manifest.json names no patient or no list of records")
        return [_check_entry(z, patient, r, chain_records) for r in records] + _check_notices(z, manifest)


def _check_entry(z: zipfile.ZipFile, patient: str, record: Any, chain_records: Any) -> RecordCheck:
    """One record's check; a manifest entry that is incomplete or malformed, or names a file the archive
    lacks, fails that record (saying why) instead of the whole check."""
    named = record.get("record_id") if isinstance(record, dict) else None
    try:
        return _check(z, patient, record, chain_records)
    except _MissingFile as missing:
        problem = f"the archive lacks {missing.name}"
    except KeyError as field:
        problem = f"the manifest's entry lacks {field.args[0]!r}"
    except (ValueError, TypeError, AttributeError) as malformed:
        problem = f"the manifest's entry is malformed ({malformed})"
    return RecordCheck(str(named or "?"), 0, [problem])


class _MissingFile(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _read(z: zipfile.ZipFile, name: str) -> bytes:
    try:
        return z.read(name)
    except KeyError:
        raise _MissingFile(name) from None


def _check(z: zipfile.ZipFile, patient: str, record: dict[str, Any], chain_records: Any) -> RecordCheck:
    problems: list[str] = []
    record_id, version = bytes.fromhex(record["record_id"]), int(record["version"])
    ciphertext, plaintext = _read(z, record["ciphertext"]), _read(z, record["file"])
    anchored = chain_records.content_hash(record_id, version).hex()
    if blake3.blake3(ciphertext).hexdigest() != anchored:
        problems.append("the ciphertext's hash is not the one anchored on chain")
    if record["content_hash"] != anchored:
        problems.append("the manifest's content hash is not the one anchored on chain")
    if record["patient"].lower() != patient.lower():
        problems.append("the record names another patient than the archive")
    subject = chain_records.record(record_id).subject
    salt = bytes.fromhex(record.get("subject_salt") or "")
    day = day_number(date.fromisoformat(record["encounter_date"])) if record.get("encounter_date") else 0
    if not salt or record_subject(record_id, record["patient"], int(record["category"]), salt, day) != subject:
        problems.append("the anchor's subject commitment does not open to this patient, category and day of care")
    context = RecordContext(
        record_id=record_id, version=version, custodian=record["sealed_by"], patient=record["patient"]
    )
    out = _Sink()
    try:
        decrypt_record(context, DataKey(bytes.fromhex(record["data_key"])), io.BytesIO(ciphertext), out)
        if out.getvalue() != plaintext:
            problems.append("the file is not what the ciphertext decrypts to")
    except Exception:
        problems.append("the ciphertext does not decrypt under the manifest's key and context")
    if hashlib.sha256(plaintext).hexdigest() != record["plaintext_sha256"]:
        problems.append("the file's SHA-256 is not the manifest's")
    return RecordCheck(record["record_id"], version, problems)


def _check_notices(z: zipfile.ZipFile, manifest: dict[str, Any]) -> list[RecordCheck]:
    """Each privacy notice kept is the text its SHA-256 says, and every consent's notice is kept."""
    problems: list[str] = []
    kept: dict[int, str] = {}
    for path in manifest.get("privacy_notices", []):
        try:
            notice = json.loads(z.read(path))
            if notice_hash(int(notice["version"]), notice["text"]).hex() != notice["sha256"]:
                problems.append(f"{path}: the text is not the one its SHA-256 names")
            kept[int(notice["version"])] = notice["sha256"]
        except (KeyError, ValueError, TypeError):
            problems.append(f"{path}: missing from the archive or not a privacy notice")
    for consent in manifest.get("consents", []):
        try:
            version = consent.get("notice_version")
            if version is not None and kept.get(int(version)) != consent.get("notice_hash"):
                problems.append(
                    f"consent {consent.get('consent_id')}: the privacy notice it was signed under is not kept"
                )
        except (AttributeError, ValueError, TypeError):
            problems.append("a consent in the manifest is malformed")
    return [RecordCheck("privacy-notices", 0, problems)] if problems else []


def passed(checks: Iterable[RecordCheck]) -> bool:
    return all(not c.problems for c in checks)
