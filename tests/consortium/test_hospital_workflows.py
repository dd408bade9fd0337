"""A hospital's workflows across members: node A links the patient to its number and asks for consent;
the patient, signed in at node B, finds the requests, answers them, removes A's link and reads an inbox
of everything — while B learns nothing of A's numbers or requests."""

from __future__ import annotations

from ledger_api.auth.patient_proof import CONSORTIUM_VIEW
from ledger_api.chain.deployment import Consortium
from ledger_api.chain.transactions import TransactionSender
from ledger_api.consent_requests.service import RequestAnswers
from tests.consortium.conftest import TwoNodes
from tests.utils.consents import signed_grant_body, suggested_grant_message
from tests.utils.enrolment import fresh_mrn, link_statement, raise_request, refusal
from tests.utils.records import LAB_REPORT


def _domain(world: TwoNodes) -> dict:
    return {"chain_id": world.a.node.chain_id, "contract": world.a.node.manifest.address("ConsentRegistry")}


def test_a_patient_signed_in_elsewhere_answers_a_hospitals_requests_removes_its_link_and_reads_an_inbox(
    two_nodes: TwoNodes,
) -> None:
    world = two_nodes
    a_account, a = world.ids.members["a"].account, world.ids.members["a"].address
    mrn = fresh_mrn()
    with world.a.member_client(a_account) as hospital:
        statement = link_statement(world.patient, hospital=a, mrn=mrn, **_domain(world))
        assert hospital.post("/v1/patient-links", json={"statement": statement}).status_code == 200
        stored = hospital.post(
            "/v1/records",
            params={"patient": f"mrn:{mrn}", "category": "labs", "media_type": "text/plain"},
            content=LAB_REPORT,
            headers={"content-type": "application/octet-stream"},
        )
        assert stored.status_code == 201, stored.text
        world.a.drain()
        record = stored.json()["id"]
        read = hospital.get(f"/v1/records/{record}/content", params={"purpose": "treatment", "clinician": "dr-1"})
        assert read.status_code == 200
        refused_one = raise_request(hospital, f"mrn:{mrn}")
        granted_one = raise_request(hospital, f"mrn:{mrn}")
    world.a.drain()
    with world.b.member_client(world.ids.members["b"].account) as other:  # an emergency at B, then its review
        emergency = {
            "patient": world.patient.address,
            "reason_code": 1,
            "justification": "unconscious",
            "clinician": "dr-2",
        }
        declared = other.post("/v1/emergency", json=emergency)
        assert declared.status_code == 201, declared.text
    auditor = Consortium(
        world.backend.w3, world.a.node.manifest, TransactionSender(world.backend.w3, world.ids.auditor.account)
    )
    auditor.consents.review_break_glass(int(declared.json()["break_glass_id"]), True, b"\x01" * 32)

    with world.b.patient_client(world.patient, resources=(CONSORTIUM_VIEW,)) as portal:
        found = portal.get(f"/v1/patients/{world.patient.address}/overview/consent-requests").json()
        assert {r["id"] for r in found["requests"]} == {refused_one["id"], granted_one["id"]}
        assert {r["requester"] for r in found["requests"]} == {a}
        links = portal.get(f"/v1/patients/{world.patient.address}/overview/links").json()
        # A's link, without A's number: B passes the answer on and never learns it
        assert [(m["member"], [link["mrn"] for link in m["links"]]) for m in links["members"] if m["links"]] == [
            (a, [None])
        ]

        body = refusal(world.patient, requester=a, request_id=refused_one["id"], **_domain(world))
        denied = portal.post(f"/v1/consent-requests/{refused_one['id']}/refusal", json=body)  # passed on to A
        assert denied.status_code == 200 and denied.json()["state"] == "denied"

        terms = granted_one["suggested_grant"]
        nonce = portal.get(f"/v1/patients/{world.patient.address}/signing-domain").json()["nonce"]
        message = suggested_grant_message(
            world.patient.address,
            terms,
            nonce=nonce,
            deadline=terms["valid_from"] + 600,
            valid_until=terms["valid_from"] + 7 * 86_400,  # the patient narrows 30 days to 7
        )
        relayed = portal.post("/v1/consents", json=signed_grant_body(world.patient, message, **_domain(world)))
        assert relayed.status_code == 202, relayed.text
    world.b.drain()
    assert RequestAnswers(world.a.node).tick() == 1

    with world.a.member_client(a_account) as hospital:
        states = {r["id"]: r["state"] for r in hospital.get("/v1/consent-requests").json()}
        assert states == {refused_one["id"]: "denied", granted_one["id"]: "granted"}
    with world.b.member_client(world.ids.members["b"].account) as other:
        assert other.get("/v1/consent-requests").json() == []  # B never held A's requests
        assert other.get(f"/v1/patients/{world.patient.address}/links").json() == []  # nor A's numbers

    with world.b.patient_client(world.patient, resources=(CONSORTIUM_VIEW,)) as portal:
        inbox = portal.get(f"/v1/patients/{world.patient.address}/inbox").json()
        kinds = sorted(item["kind"] for item in inbox["items"])
        assert kinds == [
            "access",
            "break_glass",
            "consent_request",
            "consent_request",
            "grant",
            "new_record",
            "review",
        ], kinds
        assert inbox["unread_total"] == 7 and inbox["unread"]["consent_request"] == 2
        b = world.ids.members["b"].address
        assert {(item["kind"], item["member"]) for item in inbox["items"] if item["member"] != a} == {
            ("break_glass", b),
            ("review", b),
        }
        assert [i["detail"]["decision"] for i in inbox["items"] if i["kind"] == "review"] == ["justified"]
        assert portal.post(f"/v1/patients/{world.patient.address}/inbox/seen", json={}).status_code == 200
        assert portal.get(f"/v1/patients/{world.patient.address}/inbox").json()["unread_total"] == 0

        removal = link_statement(world.patient, hospital=a, mrn="", linked=False, **_domain(world))
        removed = portal.post("/v1/patient-links/removals", json=removal)  # passed on to A
        assert removed.status_code == 200 and removed.json()["hospital"] == a
    with world.a.member_client(a_account) as hospital:
        assert hospital.get(f"/v1/patients/mrn:{mrn}/records").status_code == 404
        raise_request(hospital, world.patient.address)  # still A's patient: it holds their record
    with world.b.patient_client(world.patient, resources=(CONSORTIUM_VIEW,)) as portal:
        inbox = portal.get(f"/v1/patients/{world.patient.address}/inbox").json()
        assert inbox["unread_total"] == 1 and inbox["unread"]["consent_request"] == 1
        assert [item["needs_answer"] for item in inbox["items"] if item["unread"]] == [True]
