"""The member request signature as docs/request-signature.md specifies it, and consent relays that the
node refuses exactly when the contract would.

Both implementations (Python here, JavaScript in clients/js) are checked against the same vectors; the
JavaScript one then makes real signed calls to a running node, relaying a grant that ethers signed."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_defunct
from eth_tester.exceptions import TransactionFailed as EthTesterTransactionFailed
from medledger_crypto import ConsentGrant, sign_typed
from web3.exceptions import ContractLogicError

from ledger_api.auth.signing import NONCE, SECP256K1_N, SIGNATURE, SIGNER, canonical_query, sign_headers, signature_base
from ledger_api.chain.types import ConsentState
from ledger_api.consents.wire import grant_body, terms_under_notice
from ledger_api.vocabulary import Category, Purpose, bitset
from tests.api.conftest import World

ROOT = Path(__file__).resolve().parents[2]
VECTORS = json.loads((ROOT / "docs/request-signature-vectors.json").read_text())


@pytest.mark.parametrize("vector", VECTORS["valid"], ids=lambda v: v["name"])
def test_the_python_signer_reproduces_every_vector(vector: dict) -> None:
    parts = urlsplit(vector["url"])
    body = bytes.fromhex(vector["body_hex"])
    digest = hashlib.sha256(body).hexdigest()
    base = signature_base(
        chain_id=vector["chain_id"],
        audience=vector["audience"],
        method=vector["method"],
        path=parts.path,
        query=parts.query,
        digest=digest,
        timestamp=vector["timestamp"],
        nonce=vector["nonce"],
    )
    account = Account.from_key(vector["private_key"])
    headers = sign_headers(
        account,
        chain_id=vector["chain_id"],
        audience=vector["audience"],
        method=vector["method"],
        url=vector["url"],
        digest=digest,
        timestamp=int(vector["timestamp"]),
        nonce=vector["nonce"],
    )
    expected = vector["expected"]
    assert canonical_query(parts.query) == expected["canonical_query"]
    assert digest == expected["content_sha256"]
    assert base == expected["signature_base"]
    assert "0x" + _hash_eip191_message(encode_defunct(text=base)).hex() == expected["digest"]
    assert "0x" + headers[SIGNATURE].removeprefix("0x") == expected["signature"]
    assert headers[SIGNER] == expected["signer"]


def test_the_javascript_signer_reproduces_every_vector() -> None:
    run = subprocess.run(
        ["node", "clients/js/check-vectors.mjs", "docs/request-signature-vectors.json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("ok ") == len(VECTORS["valid"])


def _members_request(world: World, account, *, mutate: str) -> httpx.Response:
    """GET /v1/consortium/members (or a POST with a body) signed, then changed as one refused vector says."""
    node = world.node.node
    chain_id, audience, path, body, method = node.chain_id, node.address, "/v1/consortium/members", b"", "GET"
    timestamp = int(time.time())
    if mutate == "wrong-chain-id":
        chain_id += 1
    if mutate == "wrong-audience":
        audience = world.b.address
    if mutate == "timestamp-too-old":
        timestamp -= 600
    if mutate == "body-altered":
        method, path, body = "POST", "/v1/subscriptions", b'{"patient":"0x0","events":["access"],"url":"http://x/"}'
    url = f"{world.node.url}{path}"
    headers = sign_headers(
        account,
        chain_id=chain_id,
        audience=audience,
        method=method,
        url=url,
        digest=hashlib.sha256(body).hexdigest(),
        timestamp=timestamp,
    )
    if mutate == "missing-header":
        del headers[NONCE]
    if mutate == "nonce-upper-case":
        headers[NONCE] = headers[NONCE].upper() + "AB"
    if mutate in ("signature-high-s", "signature-bad-v"):
        raw = bytearray(bytes.fromhex(headers[SIGNATURE].removeprefix("0x")))
        if mutate == "signature-high-s":
            raw[32:64] = (SECP256K1_N - int.from_bytes(raw[32:64], "big")).to_bytes(32, "big")
            raw[64] = 55 - raw[64]
        else:
            raw[64] = 29
        headers[SIGNATURE] = raw.hex()
    if mutate == "query-altered":
        url += "?after=1"
    if mutate == "query-repeated-key":
        url += "?after=1&after=2"
    if mutate == "query-not-utf8":
        url += "?after=%ff"
    if mutate == "body-altered":
        body = body.replace(b"access", b"grant!")
        headers["content-type"] = "application/json"
    with httpx.Client(timeout=30) as client:
        response = client.request(method, url, headers=headers, content=body)
        if mutate == "replayed":
            assert response.status_code == 200
            response = client.request(method, url, headers=headers, content=body)
    return response


@pytest.mark.parametrize("refused", VECTORS["refused"], ids=lambda v: v["name"])
def test_each_refused_vector_gets_its_status_and_code_from_a_running_node(world: World, refused: dict) -> None:
    account = Account.create() if refused["name"] == "unknown-signer" else world.a.account
    response = _members_request(world, account, mutate=refused["name"])
    assert (response.status_code, response.json()["code"]) == (refused["status"], refused["code"]), response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith(f"/problems/{refused['code']}")


def _relay_with_javascript(world: World, script: str = "relay_grant.mjs", **extra: object) -> dict:
    args = {
        "url": world.node.url,
        "chainId": world.node.node.chain_id,
        "audience": world.node.node.address,
        "memberKey": "0x" + world.a.account.key.hex(),
        "patientKey": "0x" + world.patient.key.hex(),
        "grantee": world.b.address,
        **extra,
    }
    run = subprocess.run(
        ["node", str(ROOT / "tests/js" / script), json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_a_grant_and_its_revocation_signed_by_ethers_and_relayed_by_the_javascript_signer_land_on_chain(
    world: World,
) -> None:
    answer = _relay_with_javascript(world, deadline=str(2**256 - 1))  # a deadline may be any uint256
    assert answer["domain_status"] == 200
    assert answer["status"] == 202, answer
    relay_id = answer["body"]["id"]
    world.node.drain()
    on_chain = world.chain_as(world.stranger).consents.consents_of(world.patient.address)
    assert len(on_chain) == 1 and on_chain[0].grantees == (world.b.address,)
    with world.node.member_client(world.a.account) as client:
        status = client.get(f"/v1/relays/{relay_id}").json()
    assert status["state"] == "confirmed" and status["consent_id"] == str(on_chain[0].consent_id)
    revoked = _relay_with_javascript(world, "relay_revocation.mjs", consentId=status["consent_id"])
    assert revoked["status"] == 202, revoked
    world.node.drain()
    assert world.chain_as(world.stranger).consents.consent(on_chain[0].consent_id).state == ConsentState.REVOKED


# ------------------------------------------------------------------------------------------ node = contract

HALF = SECP256K1_N // 2


def _grant_parts(
    world: World,
    *,
    signer=None,
    chain_id=None,
    contract=None,
    nonce=None,
    deadline=None,
    grantee=None,
    valid_until=None,
    tamper=False,
) -> tuple[dict, dict]:
    """(the relay body, the message as signed)."""
    now = int(time.time())
    chain = world.chain_as(world.stranger).consents
    terms = terms_under_notice(
        grantees=(grantee or world.b.address,),
        categories=bitset([Category.LABS]),
        purposes=bitset([Purpose.TREATMENT]),
        valid_from=now - 60,
        valid_until=valid_until or now + 86_400,
    )
    message = ConsentGrant.of(
        world.patient.address,
        terms,
        nonce=chain.nonce(world.patient.address) if nonce is None else nonce,
        deadline=deadline or now + 600,
    )
    document = message.document(
        chain_id=chain_id or world.node.node.chain_id, contract=contract or world.manifest.address("ConsentRegistry")
    )
    body = grant_body(message, sign_typed(signer or world.patient, document))
    if tamper:
        body["categories"] = bitset([Category.LABS, Category.IMAGING])
    return body, message


def _mirror(signature: dict) -> dict:
    s = SECP256K1_N - int(signature["s"], 16)
    return {"v": 55 - signature["v"], "r": signature["r"], "s": s.to_bytes(32, "big").hex()}


def _contract_verdict(world: World, body: dict) -> bool:
    """Would grantBySig succeed, as a member sends it (the signature as the node relays it: v as 27/28)?"""
    signature = body["signature"]
    if isinstance(signature, str):
        raw = bytes.fromhex(signature.removeprefix("0x"))
        v, r, s = raw[64], raw[:32], raw[32:64]
    else:
        v, r, s = signature["v"], bytes.fromhex(signature["r"]), bytes.fromhex(signature["s"])
    v = v + 27 if v in (0, 1) else v
    terms = terms_under_notice(
        grantees=tuple(body["grantees"]),
        categories=body["categories"],
        purposes=body["purposes"],
        valid_from=body["valid_from"],
        valid_until=body["valid_until"],
    )
    consents = world.chain_as(world.a.account).consents.contract
    try:
        grantees, packed = list(terms.grantees), terms.packed()
        consents.functions.grantBySig(
            body["patient"], grantees, packed, terms.notice_hash, body["deadline"], v, r, s
        ).call({"from": world.a.address})
        return True
    except (ContractLogicError, EthTesterTransactionFailed):
        return False


def _as_hex(body: dict) -> dict:
    signature = body["signature"]
    raw = bytes.fromhex(signature["r"]) + bytes.fromhex(signature["s"]) + bytes([signature["v"]])
    return {**body, "signature": "0x" + raw.hex()}


def _v_as_recovery_id(body: dict) -> dict:
    return {**body, "signature": {**body["signature"], "v": body["signature"]["v"] - 27}}


def test_the_node_refuses_before_relaying_exactly_what_the_contract_would_refuse(world: World) -> None:
    """One table, run against the node and against the contract: the same verdict from both (rows are signed
    when they run, over the patient's nonce at that moment)."""
    now = int(time.time())
    table = {  # name: (the body, when the row runs; the node's answer)
        "valid": (lambda: _grant_parts(world)[0], (202, None)),
        "v as 0/1": (lambda: _v_as_recovery_id(_grant_parts(world)[0]), (202, None)),
        "one 65-byte hex string (ethers)": (lambda: _as_hex(_grant_parts(world)[0]), (202, None)),
        "high s (mirrored)": (
            lambda: {**(b := _grant_parts(world)[0]), "signature": _mirror(b["signature"])},
            (422, "signature-malleable"),
        ),
        "signed for another chain": (
            lambda: _grant_parts(world, chain_id=world.node.node.chain_id + 5)[0],
            (403, "signature-wrong-signer"),
        ),
        "signed for another contract": (
            lambda: _grant_parts(world, contract=world.b.address)[0],
            (403, "signature-wrong-signer"),
        ),
        "signed by a stranger": (
            lambda: _grant_parts(world, signer=world.stranger)[0],
            (403, "signature-wrong-signer"),
        ),
        "terms changed after signing": (lambda: _grant_parts(world, tamper=True)[0], (403, "signature-wrong-signer")),
        "nonce ahead": (lambda: _grant_parts(world, nonce=50)[0], (409, "nonce-ahead")),
        "nonce already used": (lambda: _grant_parts(world, nonce=0)[0], (409, "nonce-stale")),
        "deadline passed": (lambda: _grant_parts(world, deadline=now - 120)[0], (422, "signature-deadline-passed")),
        "window already over": (lambda: _grant_parts(world, valid_until=now - 30)[0], (422, "consent-window-invalid")),
    }
    with world.node.member_client(world.a.account) as client:
        for name, (make, (status, code)) in table.items():
            body = make()
            contract_accepts = _contract_verdict(world, body)
            response = client.post("/v1/consents", json=body)
            assert response.status_code == status, (name, response.text)
            if code is not None:
                assert response.json()["code"] == code, (name, response.text)
            assert contract_accepts == (status == 202), (name, "the contract disagrees with the node")
            world.node.drain()  # an accepted row lands before the next (one relay per nonce may be on its way)
    assert len(world.chain_as(world.stranger).consents.consents_of(world.patient.address)) == 3


def test_a_grant_naming_an_account_that_is_no_member_is_refused_by_the_node_as_by_the_contract(world: World) -> None:
    """A grant names members active when the patient signs (PIPL Art. 23): the contract checks each, and the
    node says so first, naming the account, instead of relaying a transaction that would revert."""
    body = _grant_parts(world, grantee=world.stranger.address)[0]
    assert not _contract_verdict(world, body)
    with world.node.member_client(world.a.account) as client:
        response = client.post("/v1/consents", json=body)
    assert (response.status_code, response.json()["code"]) == (422, "grantee-not-member")


def test_a_second_relay_for_a_nonce_on_its_way_is_409_naming_the_first(world: World) -> None:
    first, _ = _grant_parts(world)
    second, _ = _grant_parts(world, grantee=world.c.address)
    with world.node.member_client(world.a.account) as client:
        accepted = client.post("/v1/consents", json=first)
        refused = client.post("/v1/consents", json=second)
    assert accepted.status_code == 202
    assert (refused.status_code, refused.json()["code"]) == (409, "nonce-pending")
    assert refused.json()["relay_id"] == accepted.json()["id"]
    world.node.drain()
    with world.node.member_client(world.a.account) as client:
        status = client.get(f"/v1/relays/{accepted.json()['id']}").json()
    consent = world.chain_as(world.stranger).consents.consents_of(world.patient.address)[0]
    assert status["consent_id"] == str(consent.consent_id) and consent.grantees == (world.b.address,)


def test_a_signature_for_another_domain_names_the_expected_chain_and_contract(world: World) -> None:
    body, _ = _grant_parts(world, chain_id=1)
    with world.node.member_client(world.a.account) as client:
        problem = client.post("/v1/consents", json=body).json()
    assert problem["expected_chain_id"] == world.node.node.chain_id
    assert problem["expected_verifying_contract"] == world.manifest.address("ConsentRegistry")
    assert str(world.node.node.chain_id) in problem["detail"]
