"""Sign-In with Ethereum as EIP-4361 defines it: every message its grammar allows is read; the node's own
limits (domain, chain, URI origin, times) are separate rules with codes of their own.

Messages here are composed from the ABNF's parts in the test (not with ``siwe.build_message``), and by
the reference library (npm ``siwe``) signed with ethers."""

from __future__ import annotations

import itertools
import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from eth_account.messages import encode_defunct

from ledger_api.auth.siwe import parse_message
from ledger_api.core.rate_limit import TokenBuckets
from tests.api.conftest import World

ROOT = Path(__file__).resolve().parents[2]
OPTIONAL = ("scheme", "statement", "expiration", "not_before", "request_id", "resources")


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def compose(
    *, domain: str, address: str, uri: str, chain_id: int, nonce: str, present: set[str], scheme: str = "http"
) -> str:
    """An EIP-4361 message from the grammar's parts, with exactly the optional parts in ``present``."""
    moment = datetime.now(UTC)
    lines = [
        f"{scheme + '://' if 'scheme' in present else ''}{domain} wants you to sign in with your Ethereum account:",
        address,
        "",
    ]
    lines += (
        ["I accept the MedLedger Terms of Service: https://medledger.example/tos", ""]
        if "statement" in present
        else [""]
    )
    lines += [f"URI: {uri}", "Version: 1", f"Chain ID: {chain_id}", f"Nonce: {nonce}", f"Issued At: {iso(moment)}"]
    if "expiration" in present:
        lines.append(f"Expiration Time: {iso(moment + timedelta(minutes=10))}")
    if "not_before" in present:
        lines.append(f"Not Before: {iso(moment - timedelta(seconds=5))}")
    if "request_id" in present:
        lines.append("Request ID: 7f1c2a90-portal")
    if "resources" in present:
        lines += [
            "Resources:",
            "- ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/",
            "- https://example.com/my-web2-claim.json",
        ]
    return "\n".join(lines)


COMBINATIONS = [set(c) for n in range(len(OPTIONAL) + 1) for c in itertools.combinations(OPTIONAL, n)]


@pytest.mark.parametrize("present", COMBINATIONS, ids=lambda p: "+".join(sorted(p)) or "none")
def test_every_combination_of_optional_fields_parses(present: set[str]) -> None:
    address = "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A"
    parsed = parse_message(
        compose(
            domain="portal.hospital.example:8443",
            address=address,
            uri="https://x.example/a",
            chain_id=1337,
            nonce="abcdefgh1234",
            present=present,
        )
    )
    assert parsed.address == address and parsed.chain_id == 1337 and parsed.nonce == "abcdefgh1234"
    assert (parsed.scheme == "http") == ("scheme" in present)
    assert (parsed.statement is not None) == ("statement" in present)
    assert (parsed.expiration is not None) == ("expiration" in present)
    assert (parsed.not_before is not None) == ("not_before" in present)
    assert (parsed.request_id is not None) == ("request_id" in present)
    assert len(parsed.resources) == (2 if "resources" in present else 0)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda m: m.replace("Version: 1", "Version: 2"), "Version"),
        (lambda m: m.replace("\n\nURI:", "\nURI:", 1), "blank line"),
        (lambda m: m.replace("Nonce: abcdefgh1234", "Nonce: short"), "Nonce"),
        (lambda m: m.replace("Chain ID: 1337\n", ""), "Chain ID"),
        (lambda m: m + "\nVersion: 1", "unexpected line"),
        (lambda m: m.replace("Issued At: ", "Issued At: yesterday "), "Issued At"),
        (
            lambda m: m.replace(
                "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A", "0x19e7e376e7c213b7e7e7e46cc70a5dd086daff2a"
            ),
            "checksummed",
        ),
    ],
)
def test_messages_outside_the_grammar_are_refused_naming_the_part(change, why: str) -> None:
    message = compose(
        domain="localhost",
        address="0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A",
        uri="http://x/",
        chain_id=1337,
        nonce="abcdefgh1234",
        present={"statement"},
    )
    with pytest.raises(ValueError, match=why):
        parse_message(change(message))


def _sign_in(world: World, message: str, signature: str):
    with world.node.anonymous() as client:
        return client.post("/v1/auth/session", json={"message": message, "signature": signature})


def _challenge(world: World) -> dict:
    with world.node.anonymous() as client:
        return client.post("/v1/auth/challenge").json()


def test_grammar_built_messages_sign_in_with_each_optional_field_present_and_absent(world: World) -> None:
    world.node.node.challenge_buckets = TokenBuckets(rate_per_s=100, burst=100)
    for present in [set(), *({name} for name in OPTIONAL), set(OPTIONAL)]:
        challenge = _challenge(world)
        message = compose(
            domain=challenge["domain"],
            address=world.patient.address,
            uri=challenge["uri"],
            chain_id=challenge["chain_id"],
            nonce=challenge["nonce"],
            present=present,
        )
        signature = world.patient.sign_message(encode_defunct(text=message)).signature.hex()
        response = _sign_in(world, message, signature)
        assert response.status_code == 201, (present, response.text)
        session = response.json()
        with world.node.anonymous() as client:  # the session works
            listed = client.get(
                f"/v1/patients/{world.patient.address}/consents",
                headers={"Authorization": f"Bearer {session['token']}"},
            )
        assert listed.status_code == 200, present


def _reference(world: World, **fields: object) -> tuple[str, str]:
    run = subprocess.run(
        [
            "node",
            str(ROOT / "tests/js/siwe_message.mjs"),
            json.dumps({"key": "0x" + world.patient.key.hex(), **fields}),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=True,
    )
    made = json.loads(run.stdout)
    return made["message"], made["signature"]


def test_messages_from_the_reference_library_sign_in(world: World) -> None:
    world.node.node.challenge_buckets = TokenBuckets(rate_per_s=100, burst=100)
    variants = [
        {},  # no statement (the library writes the grammar's blank lines), no Expiration Time
        {"scheme": "http"},  # the scheme-prefixed domain form
        {
            "statement": "Sign in to MedLedger.",
            "expirationTime": iso(datetime.now(UTC) + timedelta(minutes=5)),
            "notBefore": iso(datetime.now(UTC) - timedelta(seconds=5)),
            "requestId": "req-1",
            "resources": ["https://example.com/terms"],
        },
    ]
    for extra in variants:
        challenge = _challenge(world)
        message, signature = _reference(
            world,
            domain=challenge["domain"],
            uri=challenge["uri"],
            chainId=challenge["chain_id"],
            nonce=challenge["nonce"],
            **extra,
        )
        response = _sign_in(world, message, signature)
        assert response.status_code == 201, (extra, message, response.text)


def test_the_nodes_own_limits_are_enforced_with_a_code_each(world: World) -> None:
    world.node.node.challenge_buckets = TokenBuckets(rate_per_s=100, burst=100)
    now = datetime.now(UTC)
    cases = {
        "siwe-domain-mismatch": {"domain": "evil.example"},
        "siwe-chain-mismatch": {"chainId": 1},
        "siwe-uri-not-allowed": {"uri": "https://evil.example/login"},
        "siwe-expired": {"expirationTime": iso(now - timedelta(seconds=1))},
        "siwe-not-yet-valid": {"notBefore": iso(now + timedelta(hours=1))},
    }
    for code, override in cases.items():
        challenge = _challenge(world)
        fields = {
            "domain": challenge["domain"],
            "uri": challenge["uri"],
            "chainId": challenge["chain_id"],
            "nonce": challenge["nonce"],
            **override,
        }
        response = _sign_in(world, *_reference(world, **fields))
        assert (response.status_code, response.json()["code"]) == (401, code), response.text
    challenge = _challenge(world)
    scheme = _sign_in(
        world,
        *_reference(
            world,
            domain=challenge["domain"],
            uri=challenge["uri"],
            scheme="https",
            chainId=challenge["chain_id"],
            nonce=challenge["nonce"],
        ),
    )
    assert scheme.json()["code"] == "siwe-domain-mismatch"  # the node's public URL is http here
    garbled = _sign_in(world, "hello", "00" * 65)
    assert (garbled.status_code, garbled.json()["code"], garbled.json()["field"]) == (
        422,
        "siwe-message-malformed",
        "message",
    )


def test_a_session_lasts_the_nodes_maximum_at_most_and_never_past_the_messages_expiration(world: World) -> None:
    world.node.node.challenge_buckets = TokenBuckets(rate_per_s=100, burst=100)
    ttl = world.node.node.settings.auth.session_ttl_s
    for expiration, bound in (
        (timedelta(hours=10), timedelta(seconds=ttl)),
        (timedelta(minutes=2), timedelta(minutes=2)),
    ):
        challenge = _challenge(world)
        moment = datetime.now(UTC)
        message, signature = _reference(
            world,
            domain=challenge["domain"],
            uri=challenge["uri"],
            chainId=challenge["chain_id"],
            nonce=challenge["nonce"],
            expirationTime=iso(moment + expiration),
        )
        session = _sign_in(world, message, signature).json()
        lasts = datetime.fromisoformat(session["expires_at"].replace("Z", "+00:00")) - moment
        assert lasts <= bound + timedelta(seconds=5), (expiration, lasts)
        assert lasts >= bound - timedelta(seconds=30)
