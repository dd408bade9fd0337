"""Hostile input: every refused signed request says why in the log; EIP-712 messages bound to another
chain or contract, replayed, late or signed by a stranger are refused before relaying; names that
try to walk the file system get a 4xx; and none of it stores anything."""

from __future__ import annotations

import time

import pytest
from eth_account import Account
from medledger_crypto import sign_typed
from sqlmodel import select
from structlog.testing import capture_logs

from ledger_api.auth.signing import SIGNER, sign_headers
from ledger_api.chain.types import ProposalKind
from ledger_api.consents.wire import grant_body
from ledger_api.core.db import session_scope
from ledger_api.outbox.models import OutboxItem
from ledger_api.records.models import Record
from tests.api.conftest import World
from tests.utils.consents import grant_message


def _signed(world: World, account, method: str, path: str, body: bytes = b"", **overrides):
    node = world.node
    headers = node.signed_headers(account, method, path, body=body, **overrides)
    with node.anonymous() as client:
        return client.request(method, path, content=body, headers={**headers, "content-type": "application/json"})


def _change_status(world: World, kind: ProposalKind, target: str) -> None:
    registry_a = world.chain_as(world.a.account).registry
    pid = registry_a.propose_status_change(kind, target).event("ProposalCreated").args["proposalId"]
    world.chain_as(world.b.account).registry.vote(pid, True)
    registry_a.execute(pid)


def test_every_refused_signed_request_says_why_in_the_log(world: World) -> None:
    node = world.node
    with capture_logs() as logs:
        replayed = node.signed_headers(world.a.account, "GET", "/v1/access-log")
        with node.anonymous() as client:
            assert client.get("/v1/access-log", headers=replayed).status_code == 200
            assert client.get("/v1/access-log", headers=replayed).status_code == 401
        assert (
            _signed(world, world.a.account, "GET", "/v1/access-log", timestamp=int(time.time()) - 3600).status_code
            == 401
        )
        headers = node.signed_headers(world.a.account, "POST", "/v1/emergency", body=b'{"a": 1}')
        with node.anonymous() as client:
            altered = client.post(
                "/v1/emergency", content=b'{"a": 2}', headers={**headers, "content-type": "application/json"}
            )
        assert altered.status_code == 401
        forged = sign_headers(
            Account.create(),
            chain_id=node.node.chain_id,
            audience=node.node.address,
            method="GET",
            url=node.url + "/v1/access-log",
        )
        with node.anonymous() as client:
            assert client.get("/v1/access-log", headers={**forged, SIGNER: world.a.address}).status_code == 401
        assert _signed(world, Account.create(), "GET", "/v1/consortium/members").status_code == 401
        _change_status(world, ProposalKind.SUSPEND_MEMBER, world.c.address)
        assert _signed(world, world.c.account, "GET", "/v1/consortium/members").status_code == 403
        _change_status(world, ProposalKind.REMOVE_MEMBER, world.c.address)
        assert _signed(world, world.c.account, "GET", "/v1/consortium/members").status_code == 403
    reasons = [entry["reason"] for entry in logs if entry["event"] == "signed_request_rejected"]
    assert reasons == [
        "replayed",
        "expired",
        "body-altered",
        "bad-signature",
        "unknown-signer",
        "signer-suspended",
        "signer-removed",
    ]
    assert all(
        entry["log_level"] == "warning" and entry["signer"].startswith("0x")
        for entry in logs
        if entry["event"] == "signed_request_rejected"
    )


def _grant(
    world: World,
    *,
    chain_id: int | None = None,
    contract: str | None = None,
    nonce: int = 0,
    deadline: int | None = None,
    signer=None,
) -> dict:
    now = int(time.time())
    deadline = deadline if deadline is not None else now + 600
    message = grant_message(world.patient.address, world.b.address, nonce=nonce, deadline=deadline)
    document = message.document(
        chain_id=chain_id or world.node.node.chain_id, contract=contract or world.manifest.address("ConsentRegistry")
    )
    return grant_body(message, sign_typed(signer or world.patient, document))


def test_consent_signatures_that_do_not_hold_are_refused_before_relaying(world: World) -> None:
    landed = _grant(world)
    with world.node.patient_client(world.patient) as client:
        assert client.post("/v1/consents", json=landed).status_code == 202
        world.node.drain()  # nonce 0 is used now
        refused = {
            "other chain id": client.post("/v1/consents", json=_grant(world, chain_id=1, nonce=1)),
            "other contract": client.post(
                "/v1/consents", json=_grant(world, contract=world.manifest.address("RecordRegistry"), nonce=1)
            ),
            "reused nonce": client.post("/v1/consents", json=landed),
            "passed deadline": client.post("/v1/consents", json=_grant(world, nonce=1, deadline=int(time.time()) - 1)),
            "signed by a stranger": client.post("/v1/consents", json=_grant(world, nonce=1, signer=world.stranger)),
        }
    assert {name: r.status_code for name, r in refused.items()} == {
        "other chain id": 403,
        "other contract": 403,
        "reused nonce": 409,
        "passed deadline": 422,
        "signed by a stranger": 403,
    }
    with session_scope(world.node.node.engine) as session:
        assert len(session.exec(select(OutboxItem).where(OutboxItem.kind == "consent_grant")).all()) == 1
    assert world.chain_as(world.stranger).consents.consent_count(world.patient.address) == 1


TRAVERSALS = [
    "../../etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "%2e%2e%2f%2e%2e%2fetc",
    "/etc/passwd",
    "..\\..\\win.ini",
    "a/../../b",
    "%00",
    "....",
]


@pytest.mark.parametrize("name", TRAVERSALS)
def test_names_that_walk_the_file_system_are_refused_and_store_nothing(world: World, name: str) -> None:
    node = world.node
    with session_scope(node.node.engine) as session:
        records_before = len(session.exec(select(Record)).all())
    files_before = {p for p in node.node.settings.data_dir.rglob("*") if p.is_file()}
    params = {"patient": world.patient.address, "category": "labs", "media_type": "text/plain"}
    with node.member_client(world.a.account) as client:
        answers = [
            client.get(f"/v1/records/{name}"),
            client.get(f"/v1/records/{name}/content", params={"purpose": "treatment", "clinician": "dr-1"}),
            client.delete(f"/v1/records/{name}"),
            client.post(
                "/v1/records",
                content=b"x",
                params={**params, "media_type": name},
                headers={"content-type": "application/octet-stream"},
            ),
            client.post(
                "/v1/records",
                content=b"x",
                params={**params, "fhir_resource_type": name},
                headers={"content-type": "application/octet-stream"},
            ),
            client.get("/v1/records/" + "a" * 64 + "/content", params={"purpose": "treatment", "clinician": name}),
            client.put(
                f"/v1/custody/incoming/{name}/versions/1",
                content=b"x",
                headers={"content-type": "application/octet-stream"},
            ),
            client.get(f"/portal/static/{name}"),
            client.get(f"/v1/subscriptions/{name}/notifications"),
        ]
    for response in answers:
        assert 400 <= response.status_code < 500, (response.request.url, response.status_code, response.text)
        assert "root:" not in response.text and "[fonts]" not in response.text
    with session_scope(node.node.engine) as session:
        assert len(session.exec(select(Record)).all()) == records_before
    assert {p for p in node.node.settings.data_dir.rglob("*") if p.is_file()} <= files_before | {
        p for p in node.node.settings.data_dir.rglob("*") if p.suffix in (".db", ".db-wal", ".db-shm")
    }
