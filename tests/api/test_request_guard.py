"""What one hostile caller sends cannot crash the node, buffer without bound or change what was signed:
nesting is bounded before parsing, bodies are cut off while they stream, repeated query keys are refused,
anonymous sign-in challenges are rate-limited and bounded (issue: hostile patients and members, 1, 2, 13, 14)."""

from __future__ import annotations

import sys

from sqlmodel import select

from ledger_api.access.models import AccessEntry
from ledger_api.core.db import session_scope
from ledger_api.core.jsontext import MAX_DEPTH, RECURSION_LIMIT, loads, nesting_depth_exceeds
from ledger_api.core.rate_limit import TokenBuckets
from tests.api.conftest import World
from tests.utils.raw_http import stream_body
from tests.utils.records import grant, upload

MIB = 1024 * 1024


def _json_routes(world: World) -> list[tuple[str, str]]:
    with world.node.anonymous() as client:
        schema = client.get("/openapi.json").json()
    filled = {
        "{proposal_id}": "0",
        "{order_id}": "1",
        "{record_id}": "ab" * 32,
        "{request_id}": "ab" * 16,
        "{patient}": "0x" + "12" * 20,
    }

    def fill(path: str) -> str:
        for name, value in filled.items():
            path = path.replace(name, value)
        return path

    return sorted(
        (method.upper(), fill(path))
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    )


def _signed_post(world: World, path: str, body: bytes, signer=None) -> tuple[int, str]:
    node = world.node
    headers = node.signed_headers((signer or world.a).account, "POST", path, body=body)
    with node.anonymous() as client:
        response = client.post(path, content=body, headers={**headers, "content-type": "application/json"})
    return response.status_code, response.text


def test_the_depth_check_counts_only_brackets_outside_strings() -> None:
    assert not nesting_depth_exceeds(b'{"a": "' + b"[" * 10_000 + b'"}')
    assert not nesting_depth_exceeds(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH)
    assert nesting_depth_exceeds(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1))
    assert nesting_depth_exceeds(b'{"a":' * 100 + b"1" + b"}" * 100)
    assert loads(b'{"a": ["[[[", {"b": 1}]}') == {"a": ["[[[", {"b": 1}]}


#: routes this node's own system may not call, and who may (a caller's role is checked before the body is read)
_ALLOWED_SIGNER = {
    "/v1/subscriptions": lambda world: world.ids.auditor,
    "/v1/erasure-orders/1/approval": lambda world: world.ids.auditor,
    "/v1/auth/proofs/ended": lambda world: world.b,
    "/v1/consent-requests/" + "ab" * 16 + "/refusal": lambda world: world.b,
    "/v1/patient-links/removals": lambda world: world.b,
}
#: routes only a patient signed in here may call: posted with a patient session instead
_PATIENT_ONLY = {"/v1/patient-links/offers", "/v1/patients/0x" + "12" * 20 + "/inbox/seen"}


def test_a_megabyte_of_nesting_gets_400_on_every_json_route_and_the_node_lives(world: World) -> None:
    routes = _json_routes(world)
    assert {p for _, p in routes} >= {
        "/v1/auth/session",
        "/v1/consents",
        "/v1/consents/revocations",
        "/v1/delegates",
        "/v1/subscriptions",
        "/v1/emergency",
        "/v1/governance/proposals",
        "/v1/governance/proposals/0/votes",
        "/v1/custody/handovers",
        "/v1/auth/proofs/ended",
    }
    hostile = b"[" * (MIB - 64)
    for method, path in routes:
        assert method == "POST"
        if path == "/v1/auth/session":
            with world.node.anonymous() as client:
                response = client.post(
                    path, content=b'{"message": ' + b"[" * 16_000, headers={"content-type": "application/json"}
                )
            status, text = response.status_code, response.text
        elif path in _PATIENT_ONLY:
            own = path.replace("0x" + "12" * 20, world.patient.address)  # the patient's own inbox
            with world.node.patient_client(world.patient) as client:
                response = client.post(own, content=hostile, headers={"content-type": "application/json"})
            status, text = response.status_code, response.text
        else:  # signed by a caller the route's rule lets through: the body is read only after that check
            status, text = _signed_post(world, path, hostile, signer=_ALLOWED_SIGNER.get(path, lambda w: w.a)(world))
        assert status == 400, (path, status, text)
        assert f"deeper than {MAX_DEPTH}" in text, (path, text)
    with world.node.anonymous() as client:
        assert client.get("/healthz").status_code == 200
    assert sys.getrecursionlimit() <= RECURSION_LIMIT  # an import had raised it to 100,000


def test_a_body_streaming_past_the_sign_in_limit_is_cut_off_without_being_read(world: World) -> None:
    answer = stream_body(world.node.port, "/v1/auth/session", total_bytes=512 * MIB)
    assert answer.status == 413, answer.head
    assert b"application/problem+json" in answer.head
    assert answer.sent_bytes < 64 * MIB  # the node answered after its limit, not after the whole body
    declared = stream_body(world.node.port, "/v1/auth/session", total_bytes=0, declared_length=1024 * MIB)
    assert declared.status == 413 and declared.sent_bytes == 0
    with world.node.anonymous() as client:
        assert client.get("/healthz").status_code == 200


def test_every_route_has_the_server_wide_cap_in_front_of_it(world: World) -> None:
    cap = world.node.node.settings.limits.max_upload_bytes
    for path in ("/v1/records", "/v1/emergency", "/v1/no-such-route"):
        answer = stream_body(world.node.port, path, total_bytes=0, declared_length=cap + 1)
        assert answer.status == 413, (path, answer.head)


def test_a_query_key_given_twice_is_refused_and_nothing_is_released(world: World) -> None:
    record = upload(world).json()["id"]
    grant(world, world.b.address, purposes=0b11)
    with world.node.member_client(world.b.account) as client:
        response = client.get(f"/v1/records/{record}/content?purpose=treatment&clinician=dr-1&purpose=research")
    assert response.status_code == 400
    assert response.json()["detail"] == "query parameter 'purpose' is given more than once"
    with session_scope(world.node.node.engine) as session:
        assert session.exec(select(AccessEntry).where(AccessEntry.record_id == record)).all() == []


def test_sign_in_challenges_are_rate_limited_per_client_with_retry_after(world: World) -> None:
    world.node.node.challenge_buckets = TokenBuckets(rate_per_s=1 / 60, burst=5)
    with world.node.anonymous() as client:
        answers = [client.post("/v1/auth/challenge") for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    assert answers[-1].json()["code"] == "challenge-rate-limited"
    assert 1 <= int(answers[-1].headers["retry-after"]) <= 60


def test_outstanding_sign_in_challenges_are_capped_across_clients(world: World) -> None:
    world.node.node.settings.auth.max_outstanding_challenges = 10
    world.node.node.challenge_buckets = TokenBuckets(rate_per_s=100, burst=100)  # only the cap is in play
    with world.node.anonymous() as client:
        answers = [client.post("/v1/auth/challenge") for _ in range(11)]
        assert [a.status_code for a in answers] == [200] * 10 + [429]
        ttl = world.node.node.settings.auth.siwe_nonce_ttl_s
        assert 1 <= int(answers[-1].headers["retry-after"]) <= ttl
