"""A patient's rights across the consortium: their own copy of a record held elsewhere, the archive of
everything checked against the chain, and restriction instead of destruction within retention.

Node A holds the patient's record; the patient signs in at node B (allowing the consortium view).
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path

from fhir.resources.R4B.bundle import Bundle
from medledger_crypto import RecordRestriction, SharingRestriction, sign_typed
from typer.testing import CliRunner

from ledger_api.auth.patient_proof import CONSORTIUM_VIEW
from ledger_api.chain.deployment import Consortium
from ledger_api.cli import app
from ledger_api.cli.patient_export import export_records
from ledger_api.records.export_archive import passed, verify_archive
from ledger_api.vocabulary import Category, bitset
from tests.consortium.conftest import TwoNodes
from tests.consortium.test_cross_member import _fetch_via_b

OBSERVATION = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4", "display": "HbA1c"}]},
    "valueQuantity": {"value": 6.1, "unit": "%"},
}


LETTER = b"%PDF-1.4\n%%EOF\n"


def _upload(world: TwoNodes, content: bytes, **params: str) -> str:
    with world.a.member_client(world.ids.members["a"].account) as client:
        response = client.post(
            "/v1/records",
            content=content,
            headers={"content-type": "application/octet-stream"},
            params={"patient": world.patient.address, **params},
        )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _upload_observation(world: TwoNodes) -> str:
    record_id = _upload(
        world,
        json.dumps(OBSERVATION).encode(),
        category="labs",
        media_type="application/fhir+json",
        fhir_resource_type="Observation",
        record_kind="inpatient",
        last_encounter="2026-01-05",
    )
    with world.a.member_client(world.ids.members["a"].account) as client:
        shown = client.get(f"/v1/records/{record_id}").json()
    assert shown["retention_until"] == "2056-01-05"  # inpatient: 30 years after the last encounter
    return record_id


def _domain(world: TwoNodes) -> tuple[int, str]:
    return world.a.node.chain_id, world.a.node.manifest.address("ConsentRegistry")


def _record_restriction(world: TwoNodes, record_id: str, restricted: bool) -> dict:
    now = int(time.time())
    issued = time.time_ns() // 1_000_000  # unix ms: a lift signed in the same second as its restriction is later
    message = RecordRestriction(world.patient.address, bytes.fromhex(record_id), restricted, issued, now + 600)
    chain_id, contract = _domain(world)
    v, r, s = sign_typed(world.patient, message.document(chain_id=chain_id, contract=contract))
    return {
        "patient": world.patient.address,
        "restricted": restricted,
        "issued_at": issued,
        "deadline": now + 600,
        "signature": {"v": v, "r": r.hex(), "s": s.hex()},
    }


def test_the_patient_reads_exports_and_restricts_a_record_held_by_another_member(
    two_nodes: TwoNodes, tmp_path: Path
) -> None:
    world = two_nodes
    record_id = _upload_observation(world)
    letter_id = _upload(world, LETTER, category="documents", media_type="application/pdf")
    world.a.drain()
    chain = Consortium(world.backend.w3, world.a.node.manifest)

    # the whole archive, through B, decrypted only on the patient's side, and checked against the chain
    with world.b.patient_client(world.patient, resources=(CONSORTIUM_VIEW,)) as portal:
        sink = io.BytesIO()
        outcome = export_records(portal, world.patient.address, sink)
    assert outcome["records"] == 2
    archive = sink.getvalue()
    checks = verify_archive(archive, chain.records)
    assert passed(checks) and {c.record_id for c in checks} == {record_id, letter_id}
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        bundle = json.loads(z.read("bundle.json"))
        manifest = json.loads(z.read("manifest.json"))
        files = {r["record_id"]: r["file"] for r in manifest["records"]}
        assert json.loads(z.read(files[record_id])) == OBSERVATION
        assert z.read(files[letter_id]) == LETTER
    # the Bundle is valid FHIR R4: the FHIR record as its own resource, the PDF as a DocumentReference
    # whose attachment names its file in the archive
    Bundle.model_validate(bundle)
    resources = {entry["resource"]["resourceType"]: entry["resource"] for entry in bundle["entry"]}
    assert bundle["type"] == "collection" and resources["Observation"] == OBSERVATION
    assert resources["DocumentReference"]["content"][0]["attachment"]["url"] == files[letter_id]
    # a tampered file no longer matches what the chain anchors; the CLI says so with its exit status
    tampered = _replace(archive, manifest["records"][0]["file"], b'{"resourceType": "Observation"}')
    assert not passed(verify_archive(tampered, chain.records))
    world.a.node.manifest.save(tmp_path / "deployment.json")
    (tmp_path / "good.zip").write_bytes(archive)
    (tmp_path / "bad.zip").write_bytes(tampered)
    verify = ["patient", "verify-export", "--rpc", world.backend.url, "--manifest", str(tmp_path / "deployment.json")]
    good = CliRunner().invoke(app, [*verify[:2], str(tmp_path / "good.zip"), *verify[2:]])
    bad = CliRunner().invoke(app, [*verify[:2], str(tmp_path / "bad.zip"), *verify[2:]])
    assert good.exit_code == 0 and "all match the chain" in good.output, good.output
    assert bad.exit_code == 1 and "not what the ciphertext decrypts to" in bad.output
    # a file taken out of the archive fails its record, saying which; what is no archive at all is one line
    (tmp_path / "short.zip").write_bytes(_replace(archive, files[letter_id], None))
    (tmp_path / "junk.zip").write_bytes(b"PK not really")
    short = CliRunner().invoke(app, [*verify[:2], str(tmp_path / "short.zip"), *verify[2:]])
    junk = CliRunner().invoke(app, [*verify[:2], str(tmp_path / "junk.zip"), *verify[2:]])
    assert short.exit_code == 1 and f"lacks {files[letter_id]}" in short.output.replace("\n", "")
    assert f"{record_id} v1: ok" in short.output
    assert junk.exit_code == 2 and "not a ZIP archive" in junk.output and "Traceback" not in junk.output

    # each copy is in A's trail as the patient's own action, anchored like any entry
    world.a.drain()
    with world.a.member_client(world.ids.members["a"].account) as client:
        log = client.get(f"/v1/patients/{world.patient.address}/access-log").json()
    assert sorted((e["record_id"], e["action"], e["requester"], e["basis"], e["anchoring"]) for e in log) == sorted(
        (r, "self_access", world.patient.address, "patient", "anchored") for r in (record_id, letter_id)
    )

    # B reads under consent, until the patient restricts the record (signed at B, applied by A)
    world.grant_b(bitset([Category.LABS]))
    assert _fetch_via_b(world, record_id).status_code == 200
    with world.b.patient_client(world.patient, resources=(CONSORTIUM_VIEW,)) as portal:
        restricted = portal.post(
            f"/v1/records/{record_id}/restriction", json=_record_restriction(world, record_id, True)
        )
    assert restricted.status_code == 200, restricted.text
    assert restricted.json()["restricted"] is True
    world.a.drain()
    assert chain.records.is_restricted(bytes.fromhex(record_id)) is True  # on chain, with no patient named
    assert _fetch_via_b(world, record_id).status_code == 403
    with world.a.member_client(world.ids.members["a"].account) as client:
        treatment = client.get(f"/v1/records/{record_id}/content", params={"purpose": "treatment", "clinician": "dr-1"})
        legal = client.get(f"/v1/records/{record_id}/content", params={"purpose": "legal", "clinician": "dr-1"})
        erase = client.delete(f"/v1/records/{record_id}")
    assert treatment.status_code == 403 and treatment.json()["code"] == "record-restricted"
    assert legal.status_code == 200
    assert erase.status_code == 409 and erase.json()["retention_until"] == "2056-01-05"

    # a replayed (older) request is refused; a new one lifts it, and the consent applies again
    with world.b.patient_client(world.patient, resources=(CONSORTIUM_VIEW,)) as portal:
        replay = portal.post(f"/v1/records/{record_id}/restriction", json=_record_restriction(world, record_id, True))
        assert replay.status_code == 409
        lifted = portal.post(f"/v1/records/{record_id}/restriction", json=_record_restriction(world, record_id, False))
    assert lifted.status_code == 200 and lifted.json()["restricted"] is False
    world.a.drain()
    assert _fetch_via_b(world, record_id).status_code == 200

    # all the patient's records: the patient's own statement on chain, which B's relay sends
    with world.b.patient_client(world.patient) as portal:
        domain = portal.get(f"/v1/patients/{world.patient.address}/signing-domain").json()
        message = SharingRestriction(
            patient=world.patient.address, restricted=True, nonce=domain["nonce"], deadline=int(time.time()) + 600
        )
        chain_id, contract = _domain(world)
        v, r, s = sign_typed(world.patient, message.document(chain_id=chain_id, contract=contract))
        relay = portal.post(
            f"/v1/patients/{world.patient.address}/restriction",
            json={
                "restricted": True,
                "nonce": domain["nonce"],
                "deadline": message.deadline,
                "signature": {"v": v, "r": r.hex(), "s": s.hex()},
            },
        )
        assert relay.status_code == 202, relay.text
        world.b.drain()
        assert portal.get(f"/v1/patients/{world.patient.address}/restriction").json()["restricted"] is True
    assert _fetch_via_b(world, record_id).status_code == 403  # the consent stands, overridden
    assert chain.consents.consents_of(world.patient.address)[0].state.name == "ACTIVE"


def _replace(archive: bytes, name: str, content: bytes | None) -> bytes:
    """The archive with file ``name`` holding ``content`` instead (None: taken out)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as source, zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            if item.filename != name:
                target.writestr(item.filename, source.read(item.filename))
            elif content is not None:
                target.writestr(item.filename, content)
    return out.getvalue()
