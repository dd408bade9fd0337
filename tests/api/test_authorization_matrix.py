"""Every role x every endpoint x own/other patient -> the expected status.

Roles: this node's own hospital system (local), another member without consent (remote), the
auditor, the record's patient (own), another patient (other) and nobody (anonymous).
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.api.conftest import World
from tests.api.test_records import upload

ROLES = ("local", "remote", "auditor", "own", "other", "anonymous")


def _client(world: World, role: str) -> httpx.Client:
    node = world.node
    return {
        "local": lambda: node.member_client(world.a.account),
        "remote": lambda: node.member_client(world.b.account),
        "auditor": lambda: node.member_client(world.ids.auditor.account),
        "own": lambda: node.patient_client(world.patient),
        "other": lambda: node.patient_client(world.other_patient),
        "anonymous": node.anonymous,
    }[role]()


def _upload_params(world: World) -> dict:
    return {"patient": world.patient.address, "category": "labs", "media_type": "text/plain"}


Request = Callable[[World, httpx.Client, str], httpx.Response]
CASES: dict[str, tuple[Request, dict[str, int]]] = {
    "upload record": (
        lambda w, c, r: c.post("/v1/records", content=b"x", params=_upload_params(w),
                               headers={"content-type": "application/octet-stream"}),
        {"local": 201, "remote": 403, "auditor": 403, "own": 403, "other": 403, "anonymous": 401}),
    "record metadata": (
        lambda w, c, r: c.get(f"/v1/records/{r}"),
        {"local": 200, "remote": 403, "auditor": 403, "own": 200, "other": 403, "anonymous": 401}),
    "record content": (
        lambda w, c, r: c.get(f"/v1/records/{r}/content", params={"purpose": "treatment", "clinician": "dr-1"}),
        {"local": 200, "remote": 403, "auditor": 403, "own": 403, "other": 403, "anonymous": 401}),
    "patient's records": (
        lambda w, c, r: c.get(f"/v1/patients/{w.patient.address}/records"),
        {"local": 200, "remote": 200, "auditor": 403, "own": 200, "other": 403, "anonymous": 401}),
    "erase record": (
        lambda w, c, r: c.delete(f"/v1/records/{r}"),
        {"local": 200, "remote": 403, "auditor": 403, "own": 200, "other": 403, "anonymous": 401}),
    "patient's consents": (
        lambda w, c, r: c.get(f"/v1/patients/{w.patient.address}/consents"),
        {"local": 200, "remote": 200, "auditor": 200, "own": 200, "other": 403, "anonymous": 401}),
    "permission check": (
        lambda w, c, r: c.get("/v1/permissions", params={"patient": w.patient.address, "requester": w.b.address,
                                                         "category": "labs", "purpose": "treatment"}),
        {"local": 200, "remote": 200, "auditor": 200, "own": 403, "other": 403, "anonymous": 401}),
    "patient's history": (
        lambda w, c, r: c.get(f"/v1/patients/{w.patient.address}/access-log"),
        {"local": 200, "remote": 403, "auditor": 200, "own": 200, "other": 403, "anonymous": 401}),
    "member's log": (
        lambda w, c, r: c.get("/v1/access-log"),
        {"local": 200, "remote": 403, "auditor": 200, "own": 403, "other": 403, "anonymous": 401}),
    "log export": (
        lambda w, c, r: c.get("/v1/access-log/export"),
        {"local": 200, "remote": 403, "auditor": 200, "own": 403, "other": 403, "anonymous": 401}),
    "record manifest (audit)": (
        lambda w, c, r: c.get("/v1/audit/records"),
        {"local": 200, "remote": 403, "auditor": 200, "own": 403, "other": 403, "anonymous": 401}),
    "trail verification (audit)": (
        lambda w, c, r: c.get("/v1/audit/report"),
        {"local": 200, "remote": 403, "auditor": 200, "own": 403, "other": 403, "anonymous": 401}),
    "FHIR AuditEvent export": (
        lambda w, c, r: c.get("/v1/audit/fhir/AuditEvent"),
        {"local": 200, "remote": 403, "auditor": 200, "own": 403, "other": 403, "anonymous": 401}),
    "FHIR Consent export": (
        lambda w, c, r: c.get("/v1/audit/fhir/Consent", params={"patient": w.patient.address}),
        {"local": 200, "remote": 200, "auditor": 200, "own": 200, "other": 403, "anonymous": 401}),
    "subscribe to the patient's events": (
        lambda w, c, r: c.post("/v1/subscriptions", json={"patient": w.patient.address, "events": ["break_glass"],
                                                          "url": "http://127.0.0.1:9/hook"}),
        {"local": 403, "remote": 403, "auditor": 201, "own": 201, "other": 403, "anonymous": 401}),
    "own subscriptions": (
        lambda w, c, r: c.get("/v1/subscriptions"),
        {"local": 200, "remote": 200, "auditor": 200, "own": 200, "other": 200, "anonymous": 401}),
    "patient's notifications": (
        lambda w, c, r: c.get(f"/v1/patients/{w.patient.address}/notifications"),
        {"local": 200, "remote": 403, "auditor": 403, "own": 200, "other": 403, "anonymous": 401}),
    "members": (
        lambda w, c, r: c.get("/v1/consortium/members"),
        {"local": 200, "remote": 200, "auditor": 200, "own": 200, "other": 200, "anonymous": 401}),
    "proposals": (
        lambda w, c, r: c.get("/v1/governance/proposals"),
        {"local": 200, "remote": 200, "auditor": 200, "own": 200, "other": 200, "anonymous": 401}),
    "declare break-glass": (
        lambda w, c, r: c.post("/v1/emergency", json={"patient": w.patient.address, "reason_code": 1,
                                                      "clinician": "dr-1", "justification": "unconscious, no ID"}),
        {"local": 201, "remote": 403, "auditor": 403, "own": 403, "other": 403, "anonymous": 401}),
    "propose": (
        lambda w, c, r: c.post("/v1/governance/proposals", json={"kind": "suspend_member", "target": w.c.address}),
        {"local": 201, "remote": 403, "auditor": 403, "own": 403, "other": 403, "anonymous": 401}),
}  # fmt: skip


@pytest.mark.parametrize("endpoint", list(CASES))
def test_authorization_matrix(world: World, endpoint: str) -> None:
    request, expected = CASES[endpoint]
    assert set(expected) == set(ROLES)
    observed = {}
    for role in ROLES:
        record_id = upload(world).json()["id"]  # a fresh record each time (erasure changes it)
        with _client(world, role) as client:
            observed[role] = request(world, client, record_id).status_code
    assert observed == expected
