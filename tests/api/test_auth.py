"""Who may call: signed member requests (replay, expiry, tampering, membership) and patient sign-in."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from ledger_api.auth.signing import sign_headers
from ledger_api.auth.siwe import build_message
from ledger_api.chain.types import ProposalKind
from tests.api.conftest import World


def _signed_get(world: World, account, path: str, **overrides) -> httpx.Response:
    node = world.node
    headers = node.signed_headers(account, "GET", path, **overrides)
    with node.anonymous() as client:
        return client.get(path, headers=headers)


def test_unsigned_requests_are_refused(world: World) -> None:
    with world.node.anonymous() as client:
        response = client.get("/v1/access-log")
    assert response.status_code == 401 and response.json()["code"] == "unauthenticated"


def test_a_valid_signature_is_accepted_once(world: World) -> None:
    headers = world.node.signed_headers(world.a.account, "GET", "/v1/access-log")
    with world.node.anonymous() as client:
        assert client.get("/v1/access-log", headers=headers).status_code == 200
        replay = client.get("/v1/access-log", headers=headers)
    assert replay.status_code == 401 and "replay" in replay.json()["detail"]


def test_expired_and_future_timestamps_are_refused(world: World) -> None:
    for skew in (-3600, 3600):
        response = _signed_get(world, world.a.account, "/v1/access-log", timestamp=int(time.time()) + skew)
        assert response.status_code == 401 and "window" in response.json()["detail"]


def test_signature_for_another_node_or_chain_is_refused(world: World) -> None:
    node = world.node
    for chain_id, audience in ((node.node.chain_id + 1, node.node.address), (node.node.chain_id, world.b.address)):
        headers = sign_headers(
            world.a.account, chain_id=chain_id, audience=audience, method="GET", url=node.url + "/v1/access-log"
        )
        with node.anonymous() as client:
            assert client.get("/v1/access-log", headers=headers).status_code == 401


def test_altered_path_or_body_is_refused(world: World) -> None:
    node = world.node
    headers = node.signed_headers(world.a.account, "GET", "/v1/access-log?after=0")
    with node.anonymous() as client:
        assert client.get("/v1/access-log?after=5", headers=headers).status_code == 401
    body = b'{"support": true}'
    headers = node.signed_headers(world.a.account, "POST", "/v1/governance/proposals/0/votes", body=body)
    with node.anonymous() as client:
        response = client.post(
            "/v1/governance/proposals/0/votes",
            content=b'{"support": false}',
            headers={**headers, "content-type": "application/json"},
        )
    assert response.status_code == 401 and "digest" in response.json()["detail"]


def test_unknown_keys_and_suspended_members_are_refused(world: World) -> None:
    stranger = _signed_get(world, Account.create(), "/v1/access-log")
    assert stranger.status_code == 401 and "not a consortium member" in stranger.json()["detail"]
    registry_a = world.chain_as(world.a.account).registry
    pid = (
        registry_a.propose_status_change(ProposalKind.SUSPEND_MEMBER, world.c.address)
        .event("ProposalCreated")
        .args["proposalId"]
    )
    world.chain_as(world.b.account).registry.vote(pid, True)
    registry_a.execute(pid)
    suspended = _signed_get(world, world.c.account, "/v1/consortium/members")
    assert suspended.status_code == 403 and "suspended" in suspended.json()["detail"]


def test_malformed_signature_headers_are_401_not_500(world: World) -> None:
    good = world.node.signed_headers(world.a.account, "GET", "/v1/access-log")
    # 65 bytes with v = 0 or 255: eth-keys raises BadSignature, which once escaped as a 500
    for broken in (
        {"x-medledger-signature": "zz"},
        {"x-medledger-signature": "00" * 10},
        {"x-medledger-signature": "00" * 65},
        {"x-medledger-signature": "ff" * 65},
        {"x-medledger-timestamp": "yesterday"},
        {"x-medledger-nonce": "short"},
        {"x-medledger-signer": "not-an-address"},
    ):
        with world.node.anonymous() as client:
            assert client.get("/v1/access-log", headers={**good, **broken}).status_code == 401


class TestPatientSignIn:
    def test_sign_in_gives_a_session_for_the_patients_own_data(self, world: World) -> None:
        with world.node.patient_client(world.patient) as client:
            own = client.get(f"/v1/patients/{world.patient.address}/records")
            other = client.get(f"/v1/patients/{world.other_patient.address}/records")
            assert own.status_code == 200 and own.json() == []
            assert other.status_code == 403
            assert client.delete("/v1/auth/session").status_code == 204
            assert client.get(f"/v1/patients/{world.patient.address}/records").status_code == 401

    def _attempt(
        self,
        world: World,
        *,
        domain: str | None = None,
        chain_id: int | None = None,
        expires_in: int = 600,
        signer=None,
        reuse: str | None = None,
    ) -> httpx.Response:
        with world.node.anonymous() as client:
            challenge = client.post("/v1/auth/challenge").json()
            moment = datetime.now(UTC)
            message = build_message(
                domain=domain or challenge["domain"],
                address=world.patient.address,
                uri=challenge["uri"],
                chain_id=chain_id or challenge["chain_id"],
                nonce=reuse or challenge["nonce"],
                issued_at=moment,
                expiration=moment + timedelta(seconds=expires_in),
            )
            signature = (signer or world.patient).sign_message(encode_defunct(text=message)).signature.hex()
            return client.post("/v1/auth/session", json={"message": message, "signature": signature})

    def test_bad_sign_in_messages_are_refused(self, world: World) -> None:
        assert self._attempt(world).status_code == 201
        assert self._attempt(world, domain="evil.example").status_code == 401
        assert self._attempt(world, chain_id=1).status_code == 401
        assert self._attempt(world, expires_in=-5).status_code == 401
        assert self._attempt(world, signer=world.other_patient).status_code == 401
        assert self._attempt(world, reuse="a" * 32).status_code == 401

    def test_a_well_formed_message_with_an_impossible_signature_is_4xx(self, world: World) -> None:
        with world.node.anonymous() as client:
            challenge = client.post("/v1/auth/challenge").json()
            moment = datetime.now(UTC)
            message = build_message(
                domain=challenge["domain"],
                address=world.patient.address,
                uri=challenge["uri"],
                chain_id=challenge["chain_id"],
                nonce=challenge["nonce"],
                issued_at=moment,
                expiration=moment + timedelta(minutes=5),
            )
            for signature in ("00" * 65, "ff" * 65):
                response = client.post("/v1/auth/session", json={"message": message, "signature": signature})
                assert response.status_code == 422 and "signature" in response.json()["detail"], response.text

    def test_a_sign_in_nonce_works_once(self, world: World) -> None:
        with world.node.anonymous() as client:
            challenge = client.post("/v1/auth/challenge").json()
        first = self._attempt(world, reuse=challenge["nonce"])
        second = self._attempt(world, reuse=challenge["nonce"])
        assert (first.status_code, second.status_code) == (201, 401)

    @pytest.mark.parametrize("body", [{"message": "hello", "signature": "00" * 65}, {"message": "x"}, {}])
    def test_malformed_sign_in_is_4xx(self, world: World, body: dict) -> None:
        with world.node.anonymous() as client:
            response = client.post("/v1/auth/session", json=body)
        assert 400 <= response.status_code < 500
