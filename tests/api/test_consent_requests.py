"""A hospital asks a patient for consent and learns the answer: granted (the patient's grant on chain),
denied (the patient's signed refusal), expired, or withdrawn by the hospital."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import update

from ledger_api.consent_requests.models import ConsentRequest
from ledger_api.consent_requests.service import RequestAnswers
from ledger_api.core.db import session_scope
from ledger_api.vocabulary import Category, Purpose, bitset
from tests.api.conftest import World
from tests.utils.consents import signed_grant_body, suggested_grant_message
from tests.utils.enrolment import fresh_mrn, link_statement, raise_request, refusal, request_body
from tests.utils.records import upload
from tests.utils.webhooks import Receiver


def _domain(world: World) -> dict:
    return {"chain_id": world.node.node.chain_id, "contract": world.manifest.address("ConsentRegistry")}


def _notify(world: World) -> None:
    for _ in range(5):
        if not world.node.app.state.notifier.run_once():
            return


def test_a_request_by_mrn_is_granted_by_the_patients_grant_on_chain_and_the_hospital_hears_of_it(
    world: World, receiver: Receiver
) -> None:
    mrn = fresh_mrn()
    with world.node.member_client(world.a.account) as hospital:
        statement = link_statement(world.patient, hospital=world.a.address, mrn=mrn, **_domain(world))
        assert hospital.post("/v1/patient-links", json={"statement": statement}).status_code == 200
        hook = hospital.post("/v1/subscriptions", json={"url": receiver.url, "events": ["grant", "consent_request"]})
        assert hook.status_code == 201, hook.text
        asked = raise_request(hospital, f"mrn:{mrn}", care_from="2026-10-01", care_to="2026-10-31")
    assert asked["state"] == "requested" and asked["patient"] == world.patient.address
    with world.node.patient_client(world.patient) as patient:
        seen = patient.get(f"/v1/patients/{world.patient.address}/consent-requests").json()
        assert [r["id"] for r in seen] == [asked["id"]]
        terms = seen[0]["suggested_grant"]
        assert terms["grantees"] == [world.a.address]
        assert (terms["care_from"], terms["care_to"]) == ("2026-10-01", "2026-10-31")
        assert (terms["categories"], terms["purposes"]) == (bitset([Category.LABS]), bitset([Purpose.TREATMENT]))
        assert terms["valid_until"] - terms["valid_from"] <= 30 * 86_400
        nonce = patient.get(f"/v1/patients/{world.patient.address}/signing-domain").json()["nonce"]
        message = suggested_grant_message(world.patient.address, terms, nonce=nonce, deadline=terms["valid_from"] + 600)
        relayed = patient.post("/v1/consents", json=signed_grant_body(world.patient, message, **_domain(world)))
        assert relayed.status_code == 202, relayed.text
    world.node.drain()
    assert RequestAnswers(world.node.node).tick() == 1
    with world.node.member_client(world.a.account) as hospital:
        answered = hospital.get(f"/v1/consent-requests/{asked['id']}").json()
        assert answered["state"] == "granted" and answered["consent_id"] and answered["decided_at"]
        fhir = hospital.get(f"/v1/consent-requests/{asked['id']}/fhir")
        assert fhir.headers["content-type"].startswith("application/fhir+json")
        resource = fhir.json()
        assert resource["status"] == "active" and resource["provision"]["dataPeriod"] == {
            "start": "2026-10-01",
            "end": "2026-10-31",
        }
        assert {"system": "urn:medledger:consent", "value": answered["consent_id"]} in resource["identifier"]
    _notify(world)
    events = {(body["type"], body["data"].get("state")) for body in receiver.bodies()}
    assert ("consent_request", "granted") in events and ("grant", None) in events


def test_a_refused_request_is_denied_once_and_an_unanswered_one_expires(world: World) -> None:
    upload(world)  # the hospital holds a record of the patient's: it knows them
    with world.node.member_client(world.a.account) as hospital:
        first = raise_request(hospital, world.patient.address)
        second = raise_request(hospital, world.patient.address)
        proposed = hospital.get(f"/v1/consent-requests/{first['id']}/fhir").json()
        assert proposed["status"] == "proposed"
    body = refusal(world.patient, requester=world.a.address, request_id=first["id"], **_domain(world))
    with world.node.patient_client(world.patient) as patient:
        denied = patient.post(f"/v1/consent-requests/{first['id']}/refusal", json=body)
        assert denied.status_code == 200 and denied.json()["state"] == "denied"
        again = patient.post(f"/v1/consent-requests/{first['id']}/refusal", json=body)
        assert again.status_code == 409 and again.json()["code"] == "consent-request-closed"
    forged = refusal(world.other_patient, requester=world.a.address, request_id=second["id"], **_domain(world))
    with world.node.patient_client(world.other_patient) as stranger:
        assert stranger.post(f"/v1/consent-requests/{second['id']}/refusal", json=forged).status_code == 404
    with session_scope(world.node.node.engine) as session:
        session.exec(
            update(ConsentRequest)
            .where(ConsentRequest.id == second["id"])
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    with world.node.member_client(world.a.account) as hospital:
        assert hospital.get(f"/v1/consent-requests/{first['id']}/fhir").json()["status"] == "rejected"
        lapsed = hospital.get(f"/v1/consent-requests/{second['id']}").json()
        assert lapsed["state"] == "expired" and lapsed["decided_at"]
        late = hospital.post(f"/v1/consent-requests/{second['id']}/withdrawal")
        assert late.status_code == 409 and late.json()["code"] == "consent-request-closed"
        third = raise_request(hospital, world.patient.address)
        withdrawn = hospital.post(f"/v1/consent-requests/{third['id']}/withdrawal").json()
        assert withdrawn["state"] == "withdrawn"
        states = [r["state"] for r in hospital.get("/v1/consent-requests").json()]
        assert sorted(states) == ["denied", "expired", "withdrawn"]


def test_bad_requests_are_refused_naming_the_problem(world: World) -> None:
    upload(world)
    yesterday = (date.today() - timedelta(days=1)).isoformat()
    with world.node.member_client(world.a.account) as hospital:
        cases = {
            "patient-unknown": request_body(world.stranger.address),
            "mrn-not-found": request_body("mrn:NOBODY-2"),
            "validation-error": request_body(world.patient.address, purposes=[]),
            "request-window-in-past": request_body(world.patient.address, access_from=yesterday),
            "care-range-invalid": request_body(world.patient.address, care_from="2026-10-02", care_to="2026-10-01"),
            "request-access-too-long": request_body(world.patient.address, access_days=3000),
            "custodian-not-member": request_body(world.patient.address, custodians=[world.stranger.address]),
        }
        for code, body in cases.items():
            refused = hospital.post("/v1/consent-requests", json=body)
            assert 400 <= refused.status_code < 500 and refused.json()["code"] == code, (code, refused.text)
        limit = world.node.node.settings.consent_requests.max_open_per_patient
        for _ in range(limit):
            raise_request(hospital, world.patient.address, custodians=[world.b.address])
        over = hospital.post("/v1/consent-requests", json=request_body(world.patient.address))
        assert over.status_code == 409 and over.json()["code"] == "request-limit"
