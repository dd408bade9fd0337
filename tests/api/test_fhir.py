"""FHIR R4 export: the trail as AuditEvent resources and consents as Consent resources.

Every resource the node emits is parsed again here with ``fhir.resources`` (R4B models, which
leave AuditEvent and Consent as in R4) and checked against the trail it came from: one event per
access-log entry with the same hash, purposes coded in HL7 v3 ActReason, break-glass as BTG, and
consented reads pointing at the very Consent resource the patient's consent export contains.
"""

from __future__ import annotations

import json

from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.consent import Consent

from ledger_api.audit.chain_view import read_chain
from ledger_api.audit.fhir import ACT_REASON, consent_fhir_id
from ledger_api.cli.audit_steps import consent_resources as _consent_resources
from ledger_api.vocabulary import Category, Purpose, bitset
from tests.api.conftest import World
from tests.utils.balp import privacy_disclosure_violations
from tests.utils.records import fetch, grant, upload


def _purpose_codes(event: dict) -> set[str]:
    return {c["code"] for concept in event["purposeOfEvent"] for c in concept["coding"] if c["system"] == ACT_REASON}


def _story(world: World) -> dict:
    labs = upload(world).json()["id"]
    consent_id = grant(world, world.b.address)
    assert fetch(world, world.b, labs).status_code == 200
    world.chain_as(world.c.account).consents.declare_break_glass(world.patient.address, b"\x11" * 32)
    assert fetch(world, world.c, labs).status_code == 200
    other = upload(world, patient=world.other_patient.address).json()["id"]
    assert fetch(world, world.a, other).status_code == 200  # the custodian's own read, another patient
    return {"labs": labs, "consent_id": consent_id}


def _events(world: World, **params: str) -> list[dict]:
    with world.node.member_client(world.ids.auditor.account) as client:
        response = client.get("/v1/audit/fhir/AuditEvent", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+ndjson")
    return [json.loads(line) for line in response.text.splitlines()]


def test_every_access_entry_is_one_valid_audit_event_with_its_hash(world: World) -> None:
    story = _story(world)
    events = _events(world)
    with world.node.member_client(world.ids.auditor.account) as client:
        export = [json.loads(line) for line in client.get("/v1/access-log/export").text.splitlines()]
    assert [e["id"] for e in events] == [entry["entry_hash"] for entry in export]
    for event in events:
        AuditEvent.model_validate(event)
        assert event["action"] == "R" and event["outcome"] == "0"
        assert event["source"]["observer"]["identifier"]["value"] == world.a.address.lower()
    consented, emergency, own = events
    assert _purpose_codes(consented) == {"TREAT"}
    # a release to another member is a BALP PrivacyDisclosure at the source: custodian -> recipient
    for disclosure in (consented, emergency):
        assert privacy_disclosure_violations(disclosure, "Source") == []
    assert consented["agent"][0]["who"]["identifier"]["value"] == world.a.address.lower()
    assert consented["agent"][1]["who"]["identifier"]["value"] == world.b.address.lower()
    assert consented["agent"][2]["who"]["identifier"]["value"] == "dr-wang-7f3a"
    references = [e["what"].get("reference") for e in consented["entity"]]
    assert f"Consent/{consent_fhir_id(story['consent_id'])}" in references
    assert _purpose_codes(emergency) == {"TREAT", "BTG", "ETREAT"}
    assert [len(concept["coding"]) for concept in emergency["purposeOfEvent"]] == [1, 1, 1]  # one concept each
    assert emergency["agent"][1]["who"]["identifier"]["value"] == world.c.address.lower()
    assert _purpose_codes(own) == {"TREAT"}
    assert privacy_disclosure_violations(own, "Source") != []  # the custodian's own read discloses nothing
    assert {d["valueString"] for e in own["entity"] for d in e.get("detail", [])} >= {"custodian", "3"}


def test_audit_events_can_be_selected_for_one_patient(world: World) -> None:
    _story(world)
    events = _events(world, patient=world.other_patient.address)
    assert len(events) == 1
    patients = [e["what"]["identifier"]["value"] for e in events[0]["entity"] if e.get("role", {}).get("code") == "1"]
    assert patients == [world.other_patient.address.lower()]


def test_a_patients_consents_are_a_valid_bundle_with_their_status_and_terms(world: World) -> None:
    active = grant(
        world,
        world.b.address,
        categories=bitset([Category.LABS, Category.IMAGING]),
        purposes=bitset([Purpose.TREATMENT, Purpose.RESEARCH]),
    )
    revoked = grant(world, world.c.address)
    world.chain_as(world.patient).consents.revoke(revoked)
    with world.node.patient_client(world.patient) as client:
        response = client.get("/v1/audit/fhir/Consent", params={"patient": world.patient.address})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    bundle = response.json()
    Bundle.model_validate(bundle)
    assert bundle["type"] == "searchset" and bundle["total"] == 2
    consents = {entry["resource"]["id"]: entry["resource"] for entry in bundle["entry"]}
    for resource in consents.values():
        Consent.model_validate(resource)
        assert resource["patient"]["identifier"]["value"] == world.patient.address.lower()
    first, second = consents[consent_fhir_id(active)], consents[consent_fhir_id(revoked)]
    assert first["status"] == "active" and second["status"] == "inactive"
    assert {c["code"] for c in first["provision"]["purpose"]} == {"TREAT", "HRESCH"}
    assert {c["coding"][0]["code"] for c in first["provision"]["code"]} == {"labs", "imaging"}
    assert first["provision"]["actor"][0]["reference"]["identifier"]["value"] == world.b.address.lower()
    assert first["provision"]["period"]["end"] > first["provision"]["period"]["start"]
    assert "dateTime" in first and "extension" not in first  # granted at (block time); never revoked
    assert second["extension"][0]["url"] == "urn:medledger:consent-revoked-at"
    assert all(
        entry["fullUrl"].startswith("urn:uuid:") and entry["search"] == {"mode": "match"} for entry in bundle["entry"]
    )
    # one mapping: the API's resources are the very ones the CLI's bulk export writes
    names = {m.account: m.name for m in world.chain_as(world.stranger).registry.members()}
    exported = {r["id"]: r for r in _consent_resources(read_chain(world.backend.w3, world.manifest), names)}
    assert consents == {consent_id: exported[consent_id] for consent_id in consents}


def test_fhir_exports_are_only_for_whom_they_concern(world: World) -> None:
    _story(world)
    with world.node.member_client(world.b.account) as client:  # another member: not its trail
        assert client.get("/v1/audit/fhir/AuditEvent").status_code == 403
    with world.node.patient_client(world.other_patient) as client:  # another patient's consents
        response = client.get("/v1/audit/fhir/Consent", params={"patient": world.patient.address})
        assert response.status_code == 403
        bad = client.get("/v1/audit/fhir/Consent", params={"patient": "0x1234"})
        assert bad.status_code == 422 and "patient" in bad.text
    with world.node.anonymous() as client:
        assert client.get("/v1/audit/fhir/AuditEvent").status_code == 401
