"""Sharing across members: B's node reads A's records through A's node, only as the chain allows."""

from __future__ import annotations

import json

from fhir.resources.R4B.auditevent import AuditEvent

from ledger_api.core import headers as header_names
from ledger_api.vocabulary import Category, bitset
from tests.consortium.conftest import TwoNodes
from tests.utils.balp import privacy_disclosure_violations

STUDY = bytes(range(256)) * 4096  # 1 MiB "imaging study"


def _upload(world: TwoNodes, body: bytes, category: Category, **extra: str) -> str:
    with world.a.member_client(world.ids.members["a"].account) as client:
        response = client.post(
            "/v1/records",
            content=body,
            headers={"content-type": "application/octet-stream"},
            params={
                "patient": world.patient.address,
                "category": category.name.lower(),
                "media_type": "application/dicom",
                **extra,
            },
        )
    assert response.status_code == 201, response.text
    world.a.drain()
    return response.json()["id"]


def _fetch_via_b(world: TwoNodes, record_id: str, purpose: str = "treatment"):
    with world.b.member_client(world.ids.members["b"].account) as client:
        return client.get(
            f"/v1/consortium/records/{record_id}",
            params={"custodian": world.ids.members["a"].address, "purpose": purpose, "clinician": "dr-li-22"},
        )


def test_b_reads_a_record_through_both_nodes_only_with_consent(two_nodes: TwoNodes) -> None:
    world = two_nodes
    record_id = _upload(world, STUDY, Category.IMAGING)
    denied = _fetch_via_b(world, record_id)
    assert denied.status_code == 403 and denied.json()["code"] == "consent-denied"
    consent_id = world.grant_b(bitset([Category.IMAGING]))
    served = _fetch_via_b(world, record_id)
    assert served.status_code == 200, served.text
    assert served.content == STUDY and served.headers["content-type"] == "application/dicom"
    assert served.headers[header_names.BASIS] == "consent"
    assert _fetch_via_b(world, record_id, purpose="research").status_code == 403
    # A logged the release to B, with B's clinician, and anchors it
    with world.a.member_client(world.ids.members["a"].account) as client:
        (entry,) = client.get("/v1/access-log").json()
    assert (entry["requester"], entry["clinician"], entry["authorization"]) == (
        world.ids.members["b"].address,
        "dr-li-22",
        f"{consent_id:064x}",
    )
    # B's disk never held plaintext
    assert not [p for p in world.b.node.blob_dir.rglob("*") if p.is_file()]


def _audit_events(node, account) -> list[dict]:
    with node.member_client(account) as client:
        response = client.get("/v1/audit/fhir/AuditEvent")
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.text.splitlines()]


def test_a_disclosure_is_audited_at_both_ends_as_ihe_balp_prescribes(two_nodes: TwoNodes) -> None:
    """The custodian's PrivacyDisclosure (source) and the recipient's matching import event (recipient)
    name the same custodian log entry, so an auditor pairs them."""
    world = two_nodes
    record_id = _upload(world, b"creatinine 88 umol/L", Category.LABS)
    world.grant_b(bitset([Category.LABS]))
    assert _fetch_via_b(world, record_id).status_code == 200
    assert _fetch_via_b(world, record_id).status_code == 200
    (first, second) = _audit_events(world.a, world.ids.members["a"].account)
    imports = [
        e
        for e in _audit_events(world.b, world.ids.members["b"].account)
        if "PrivacyDisclosure.Recipient" in e.get("meta", {}).get("profile", [""])[0]
    ]
    assert len(imports) == 2
    for source, recipient in zip((first, second), imports, strict=True):
        AuditEvent.model_validate(recipient)
        assert privacy_disclosure_violations(source, "Source") == []
        assert privacy_disclosure_violations(recipient, "Recipient") == []
        entry = [
            e["what"]["identifier"]["value"]
            for e in source["entity"]
            if e["what"].get("identifier", {}).get("system") == "urn:medledger:access-entry"
        ]
        paired = [
            e["what"]["identifier"]["value"]
            for e in recipient["entity"]
            if e["what"].get("identifier", {}).get("system") == "urn:medledger:access-entry"
        ]
        assert entry == paired and entry[0].startswith(world.ids.members["a"].address.lower())
        assert recipient["source"]["observer"]["identifier"]["value"] == world.ids.members["b"].address.lower()


def _tamper_blob(world: TwoNodes, record_id: str) -> bytes:
    blob = next((world.a.node.blob_dir / record_id).glob("*.bin"))
    data = bytearray(blob.read_bytes())
    data[-1] ^= 1
    blob.write_bytes(bytes(data))
    return bytes(data)


def test_a_custodian_refuses_to_serve_its_own_tampered_ciphertext(two_nodes: TwoNodes) -> None:
    world = two_nodes
    record_id = _upload(world, b"potassium 4.1 mmol/L" * 100, Category.LABS)
    world.grant_b(bitset([Category.LABS]))
    _tamper_blob(world, record_id)
    response = _fetch_via_b(world, record_id)
    assert response.status_code == 500 and response.json()["code"] == "stored-ciphertext-mismatch"


def test_the_reader_checks_the_chain_anchor_even_if_the_custodian_lies(two_nodes: TwoNodes) -> None:
    import blake3
    from sqlmodel import select

    from ledger_api.core.db import session_scope
    from ledger_api.records.models import RecordVersion

    world = two_nodes
    record_id = _upload(world, b"potassium 4.1 mmol/L" * 100, Category.LABS)
    world.grant_b(bitset([Category.LABS]))
    forged = _tamper_blob(world, record_id)
    with session_scope(world.a.node.engine) as session:  # a custodian whose own records were doctored
        row = session.exec(select(RecordVersion).where(RecordVersion.record_id == record_id)).one()
        row.content_hash = blake3.blake3(forged).hexdigest()
        session.add(row)
    response = _fetch_via_b(world, record_id)
    assert response.status_code == 500 and "anchored on chain" in response.json()["detail"]
    assert not [p for p in world.b.node.blob_dir.rglob("*") if p.is_file()]


def test_fan_out_reports_each_member_and_survives_one_down(two_nodes: TwoNodes) -> None:
    world = two_nodes
    _upload(world, b"HbA1c 6.1%", Category.LABS)
    _upload(world, b"psychiatric assessment", Category.MENTAL_HEALTH)
    world.grant_b(bitset([Category.LABS]))
    with world.b.member_client(world.ids.members["b"].account) as client:
        response = client.get(
            f"/v1/consortium/patients/{world.patient.address}/records",
            params={"purpose": "treatment", "deadline_ms": 2000},
        )
    assert response.status_code == 200, response.text
    by_member = {m["member"]: m for m in response.json()["members"]}
    a, b, c = (world.ids.members[s].address for s in ("a", "b", "c"))
    assert by_member[a]["status"] == "returned"
    assert [r["category"] for r in by_member[a]["records"]] == [int(Category.LABS)]  # mental health withheld
    assert by_member[b]["status"] == "returned" and by_member[b]["records"] == []
    assert by_member[c]["status"] == "unreachable"
    assert response.json()["elapsed_ms"] < 2500


def test_only_the_local_system_may_ask_through_its_node(two_nodes: TwoNodes) -> None:
    world = two_nodes
    record_id = _upload(world, b"x" * 10, Category.LABS)
    with world.b.member_client(world.ids.members["a"].account) as client:  # A asking B's node to fetch for it
        response = client.get(
            f"/v1/consortium/records/{record_id}",
            params={"custodian": world.ids.members["a"].address, "purpose": "treatment", "clinician": "x"},
        )
    assert response.status_code == 403
