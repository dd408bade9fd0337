"""Records through the member node: upload, anchor, consent-checked release, versions, erasure."""

from __future__ import annotations

from datetime import date

from ledger_api.chain.commitments import opens
from ledger_api.chain.days import day_number
from ledger_api.core import headers as header_names
from ledger_api.vocabulary import Category, Purpose, bitset
from tests.api.conftest import World
from tests.utils.records import LAB_REPORT, PAST_RETENTION, fetch, grant, open_release, upload


def test_upload_encrypts_stores_and_anchors(world: World) -> None:
    response = upload(world)
    assert response.status_code == 201, response.text
    record = response.json()
    assert record["patient"] == world.patient.address and record["custodian"] == world.a.address
    assert record["category"] == Category.LABS and record["latest_version"] == 1
    version = record["versions"][0]
    assert version["anchoring"] == "pending" and version["plaintext_size"] == len(LAB_REPORT)
    world.node.drain()
    with world.node.member_client(world.a.account) as client:
        record = client.get(f"/v1/records/{record['id']}").json()
    assert record["versions"][0]["anchoring"] == "anchored"
    reader = world.chain_as(world.stranger)
    anchored = reader.records.content_hash(bytes.fromhex(record["id"]), 1)
    assert anchored.hex() == version["content_hash"]
    assert reader.records.record(bytes.fromhex(record["id"])).custodian == world.a.address
    blobs = list((world.node.node.blob_dir / record["id"]).iterdir())
    assert len(blobs) == 1 and LAB_REPORT[:20] not in blobs[0].read_bytes()


def test_other_member_is_denied_without_consent_and_served_with_it(world: World) -> None:
    record_id = upload(world).json()["id"]
    denied = fetch(world, world.b, record_id)
    assert denied.status_code == 403 and denied.json()["code"] == "consent-denied"
    assert denied.headers["content-type"] == "application/problem+json"
    consent_id = grant(world, world.b.address, categories=bitset([Category.LABS]))
    served = fetch(world, world.b, record_id)
    assert served.status_code == 200, served.text
    assert served.headers[header_names.BASIS] == "consent"
    assert open_release(served, world.b) == LAB_REPORT
    # research is not covered; C has no consent
    assert fetch(world, world.b, record_id, Purpose.RESEARCH).status_code == 403
    assert fetch(world, world.c, record_id).status_code == 403
    # revocation honoured by the very next request
    world.chain_as(world.patient).consents.revoke(consent_id)
    assert fetch(world, world.b, record_id).status_code == 403


def test_consent_naming_every_member_and_break_glass(world: World) -> None:
    record_id = upload(world, category=Category.IMAGING).json()["id"]
    grant(world, (world.a.address, world.b.address, world.c.address), categories=bitset([Category.IMAGING]))
    assert fetch(world, world.c, record_id).status_code == 200
    other = upload(world, category=Category.MENTAL_HEALTH).json()["id"]
    assert fetch(world, world.c, other).status_code == 403
    world.chain_as(world.c.account).consents.declare_break_glass(world.patient.address, b"\x01" * 32)
    served = fetch(world, world.c, other)
    assert served.status_code == 200 and served.headers[header_names.BASIS] == "break_glass"


def test_custodian_reads_its_own_record(world: World) -> None:
    record_id = upload(world).json()["id"]
    served = fetch(world, world.a, record_id)
    assert served.status_code == 200 and served.headers[header_names.BASIS] == "custodian"
    assert open_release(served, world.a) == LAB_REPORT


def test_new_versions_append(world: World) -> None:
    record_id = upload(world).json()["id"]
    with world.node.member_client(world.a.account) as client:
        response = client.post(
            f"/v1/records/{record_id}/versions",
            content=b"corrected report",
            headers={"content-type": "application/octet-stream"},
        )
    assert response.status_code == 201, response.text
    assert [v["version"] for v in response.json()["versions"]] == [1, 2]
    world.node.drain()
    assert world.chain_as(world.stranger).records.record(bytes.fromhex(record_id)).latest_version == 2
    assert open_release(fetch(world, world.a, record_id), world.a) == b"corrected report"


def test_erasure_crypto_shreds_and_is_logged(world: World) -> None:
    record_id = upload(world, **PAST_RETENTION).json()["id"]
    with world.node.member_client(world.a.account) as client:
        response = client.delete(f"/v1/records/{record_id}")
    assert response.status_code == 200 and response.json()["action"] == "erase"
    assert fetch(world, world.a, record_id).status_code == 404
    assert not any((world.node.node.blob_dir / record_id).glob("*.bin"))
    with world.node.member_client(world.a.account) as client:
        listed = client.get(f"/v1/patients/{world.patient.address}/records").json()
    assert listed[0]["erased"] is True
    world.node.drain()
    assert world.chain_as(world.stranger).trail.last_sequence(world.a.address) == 1


def test_the_patient_gets_the_salt_that_opens_the_anchor_and_other_members_do_not(world: World) -> None:
    """The chain holds only a commitment to patient and category; the patient (and the custodian's own
    system) can open it with the salt shown with the record, a consented member sees the record without it."""
    record = upload(world, category=Category.IMAGING).json()
    world.node.drain()
    anchored = world.chain_as(world.stranger).records.record(bytes.fromhex(record["id"]))
    with world.node.patient_client(world.patient) as client:
        (mine,) = client.get(f"/v1/patients/{world.patient.address}/records").json()
    salt, day = bytes.fromhex(mine["subject_salt"]), day_number(date.fromisoformat(mine["encounter_date"]))
    record_id = bytes.fromhex(record["id"])
    assert opens(anchored.subject, record_id, world.patient.address, int(Category.IMAGING), salt, day)
    assert not opens(anchored.subject, record_id, world.patient.address, int(Category.LABS), salt, day)
    assert not opens(anchored.subject, record_id, world.patient.address, int(Category.IMAGING), salt, day - 1)
    grant(world, world.b.address)
    with world.node.member_client(world.b.account) as client:
        (seen,) = client.get(f"/v1/patients/{world.patient.address}/records").json()
    assert seen["id"] == record["id"] and seen["subject_salt"] is None
