"""The portal opens a patient's own record in the browser, with no MedLedger server code: its HPKE
(RFC 9180, X25519) and stream decryption in JavaScript (WebCrypto, run here in Node) open what the
Python side sealed, refuse a tampered byte, and its archive is a ZIP the Python side reads and checks."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import zipfile
from pathlib import Path

import blake3
from medledger_crypto import (
    DataKey,
    HpkePrivateKey,
    HpkeSuite,
    RecordContext,
    WrapContext,
    decrypt_record,
    encrypt_record,
    wrap_data_key,
)

ROOT = Path(__file__).resolve().parents[2]
OBSERVATION = b'{"resourceType": "Observation", "status": "final", "valueQuantity": {"value": 6.1}}'


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_the_browser_code_opens_a_record_sealed_for_its_key_and_archives_it(tmp_path: Path) -> None:
    record_id, patient, custodian = os.urandom(32), "0x" + "ab" * 20, "0x" + "cd" * 20
    plaintext = OBSERVATION * 200  # several segments of 4 KiB
    context = RecordContext(record_id, 3, custodian, patient)
    sealed = io.BytesIO()
    encrypted = encrypt_record(context, io.BytesIO(plaintext), sealed, segment_size=4096)
    reader = HpkePrivateKey.generate(HpkeSuite.X25519)
    wrapped = wrap_data_key(encrypted.data_key, reader.public_key(), WrapContext(record_id, 3, patient))
    case = {
        "d": _b64url(reader.private_bytes()),
        "x": _b64url(reader.public_key().to_bytes()),
        "wrapped": base64.b64encode(wrapped).decode(),
        "ciphertext": base64.b64encode(sealed.getvalue()).decode(),
        "record_id": record_id.hex(),
        "version": 3,
        "custodian": custodian,
        "patient": patient,
        "media_type": "application/fhir+json",
        "fhir_resource_type": "Observation",
        "salt": "00" * 32,
        "content_hash": encrypted.content_hash.hex(),
    }
    (tmp_path / "case.json").write_text(json.dumps(case))
    run = subprocess.run(
        ["node", str(ROOT / "tests/js/own_record.mjs"), str(tmp_path / "case.json"), str(tmp_path / "all.zip")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr
    opened = json.loads(run.stdout)
    assert bytes.fromhex(opened["plaintext"]) == plaintext
    assert opened["tampered"] == "refused"

    with zipfile.ZipFile(tmp_path / "all.zip") as archive:
        assert archive.testzip() is None  # every CRC the browser wrote is right
        manifest = json.loads(archive.read("manifest.json"))
        bundle = json.loads(archive.read("bundle.json"))
        entry = manifest["records"][0]
        ciphertext = archive.read(entry["ciphertext"])
        assert archive.read(entry["file"]) == plaintext
    assert manifest["format"] == "medledger-export/1"
    assert blake3.blake3(ciphertext).hexdigest() == entry["content_hash"] == encrypted.content_hash.hex()
    out = io.BytesIO()
    decrypt_record(
        RecordContext(record_id, 3, entry["sealed_by"], entry["patient"]),
        DataKey(bytes.fromhex(entry["data_key"])),
        io.BytesIO(ciphertext),
        out,
    )
    assert out.getvalue() == plaintext
    # declared FHIR but not one resource (here: the same text 200 times): kept as a document pointing at its file
    document = bundle["entry"][0]["resource"]
    assert bundle["type"] == "collection" and document["resourceType"] == "DocumentReference"
    assert document["content"][0]["attachment"]["url"] == entry["file"]
