"""A hospital knows its patients by its own numbers: a patient links their account to their MRN with a
statement they sign at the desk, and the hospital's system then names them as ``mrn:<number>``."""

from __future__ import annotations

import time

from sqlmodel import select

from ledger_api.auth.patient_numbers import PatientLink
from ledger_api.chain.backends import AnvilBackend
from ledger_api.core.db import session_scope
from tests.api.conftest import World
from tests.utils.chain_leaks import read_chain_copy
from tests.utils.enrolment import ID_CARD, fresh_mrn, link_statement
from tests.utils.records import upload


def _domain(world: World) -> dict:
    return {"chain_id": world.node.node.chain_id, "contract": world.manifest.address("ConsentRegistry")}


def _statement(world: World, mrn: str, patient=None, **options) -> dict:
    return link_statement(patient or world.patient, hospital=world.a.address, mrn=mrn, **_domain(world), **options)


def test_a_linked_patient_is_named_by_their_mrn_on_every_route_of_the_hospitals_system(world: World) -> None:
    mrn = fresh_mrn()
    with world.node.member_client(world.a.account) as hospital:
        linked = hospital.post(
            "/v1/patient-links", json={"statement": _statement(world, mrn), "id_card_number": ID_CARD}
        )
        assert linked.status_code == 200, linked.text
        assert linked.json()["patient"] == world.patient.address and linked.json()["id_card_on_file"]

        stored = hospital.post(
            "/v1/records",
            params={"patient": f"mrn:{mrn}", "category": "labs", "media_type": "text/plain"},
            content=b"Hb 131 g/L",
            headers={"content-type": "application/octet-stream"},
        )
        assert stored.status_code == 201, stored.text
        assert stored.json()["patient"] == world.patient.address
        world.node.drain()
        for path in ("records", "consents", "access-log", "delegates", "restriction", "links", "consent-requests"):
            by_number = hospital.get(f"/v1/patients/mrn:{mrn}/{path}")
            by_account = hospital.get(f"/v1/patients/{world.patient.address}/{path}")
            assert by_number.status_code == 200, (path, by_number.text)
            assert by_number.json() == by_account.json(), path
        permission = hospital.get(
            "/v1/permissions",
            params={"patient": f"mrn:{mrn}", "requester": world.b.address, "category": "labs", "purpose": "treatment"},
        )
        assert permission.status_code == 200 and permission.json()["patient"] == world.patient.address
        emergency = {"patient": f"mrn:{mrn}", "reason_code": 1, "justification": "unconscious on arrival"}
        declared = hospital.post("/v1/emergency", json={**emergency, "clinician": "dr-ed-1"})
        assert declared.status_code == 201 and declared.json()["patient"] == world.patient.address
        found = hospital.post("/v1/patient-links/lookup", json={"id_card_number": ID_CARD})
        assert found.status_code == 200 and found.json()["mrn"] == mrn
    with world.node.patient_client(world.patient) as patient:
        assert [link["mrn"] for link in patient.get(f"/v1/patients/{world.patient.address}/links").json()] == [mrn]
    with session_scope(world.node.node.engine) as session:
        row = session.exec(select(PatientLink).where(PatientLink.mrn == mrn)).one()
        assert row.id_card_hash and ID_CARD not in row.id_card_hash  # kept only as a keyed hash
    if isinstance(world.backend, AnvilBackend):  # a JSON-RPC chain: every transaction, log and slot is read
        chain = read_chain_copy(world.backend.w3, world.manifest)
        assert chain.transactions and not any(mrn.encode() in b or ID_CARD.encode() in b for b in chain.blobs)


def test_the_desk_types_the_short_code_once(world: World) -> None:
    mrn = fresh_mrn()
    with world.node.patient_client(world.patient) as patient:
        offered = patient.post("/v1/patient-links/offers", json=_statement(world, mrn))
    assert offered.status_code == 201, offered.text
    code = offered.json()["code"]
    assert len(code) == 9 and code[4] == "-"
    with world.node.member_client(world.a.account) as hospital:
        linked = hospital.post("/v1/patient-links", json={"code": code.lower()})  # typed: case does not matter
        assert linked.status_code == 200, linked.text
        assert linked.json()["mrn"] == mrn
        again = hospital.post("/v1/patient-links", json={"code": code})
        assert again.status_code == 404 and again.json()["code"] == "link-code-unknown"
        both = hospital.post("/v1/patient-links", json={"code": code, "statement": _statement(world, mrn)})
        assert both.status_code == 422 and both.json()["code"] == "link-source-missing"


def test_unknown_taken_stale_foreign_and_forged_statements_are_refused_naming_the_problem(world: World) -> None:
    mrn, other_mrn = fresh_mrn(), fresh_mrn()
    first = _statement(world, mrn)
    with world.node.member_client(world.a.account) as hospital:
        unknown = hospital.get("/v1/patients/mrn:NOBODY-1/records")
        assert unknown.status_code == 404 and unknown.json()["code"] == "mrn-not-found"
        assert "NOBODY-1" in unknown.json()["detail"]
        assert hospital.post("/v1/patient-links", json={"statement": first}).status_code == 200
        taken = hospital.post("/v1/patient-links", json={"statement": _statement(world, mrn, world.other_patient)})
        assert taken.status_code == 409 and taken.json()["code"] == "mrn-linked-elsewhere"
        moved = hospital.post("/v1/patient-links", json={"statement": _statement(world, other_mrn)})
        assert moved.status_code == 200 and moved.json()["mrn"] == other_mrn
        assert hospital.get(f"/v1/patients/mrn:{mrn}/records").status_code == 404  # the old number is free
        replay = hospital.post("/v1/patient-links", json={"statement": first})
        assert replay.status_code == 409 and replay.json()["code"] == "link-statement-stale"
        cases = {
            "signature-deadline-passed": _statement(world, fresh_mrn(), lasts_s=-1),
            "link-statement-too-long": _statement(world, fresh_mrn(), lasts_s=86_400),
            "link-wrong-hospital": link_statement(
                world.patient, hospital=world.b.address, mrn=fresh_mrn(), **_domain(world)
            ),
            "signature-wrong-signer": _statement(world, fresh_mrn(), signer=world.stranger),
            "issued-in-future": _statement(world, fresh_mrn(), issued_at=(int(time.time()) + 3600) * 1000),
        }
        for code, statement in cases.items():
            refused = hospital.post("/v1/patient-links", json={"statement": statement})
            assert refused.json()["code"] == code, (code, refused.text)
            assert refused.status_code in (403, 422)
        assert hospital.get(f"/v1/patients/mrn:{other_mrn}/links").json()[0]["patient"] == world.patient.address
    with world.node.member_client(world.b.account) as other_member:  # refused alike, known number or not
        for number in (other_mrn, "NOBODY-1"):
            foreign = other_member.get(f"/v1/patients/mrn:{number}/records")
            assert foreign.status_code == 403 and foreign.json()["code"] == "mrn-own-system-only"


def test_the_patient_removes_a_link_and_the_hospital_keeps_its_records(world: World) -> None:
    mrn = fresh_mrn()
    record = upload(world).json()["id"]
    with world.node.member_client(world.a.account) as hospital:
        assert hospital.post("/v1/patient-links", json={"statement": _statement(world, mrn)}).status_code == 200
    with world.node.patient_client(world.patient) as patient:
        removed = patient.post("/v1/patient-links/removals", json=_statement(world, "", linked=False))
        assert removed.status_code == 200, removed.text
        assert patient.get(f"/v1/patients/{world.patient.address}/links").json() == []
        again = patient.post("/v1/patient-links/removals", json=_statement(world, "", linked=False))
        assert again.status_code == 404 and again.json()["code"] == "link-not-found"
    with world.node.member_client(world.a.account) as hospital:
        assert hospital.get(f"/v1/patients/mrn:{mrn}/records").status_code == 404
        held = hospital.get(f"/v1/patients/{world.patient.address}/records").json()
        assert [r["id"] for r in held] == [record]
