"""Consent terms that stand up under PIPL: the members named, the privacy notice shown, the days of care
covered, and records the patient hides from every consent.

Each is checked where it is enforced: the node's relay (bad terms refused with a code naming the
problem), the chain (what a grant covers), the custodian's release and listing, and the auditor's
verification of what a node logged anyway.
"""

from __future__ import annotations

from datetime import date

from eth_account import Account

from ledger_api.chain.days import day_number
from ledger_api.chain.types import GrantTerms, Role
from ledger_api.notice import service as privacy_notice
from ledger_api.vocabulary import Category, bitset
from tests.api.conftest import World
from tests.api.test_audit import _audit, _codes, _log_as_if_released, _read_by_b
from tests.utils.actors import X25519_KEY
from tests.utils.consents import grant_message, signed_grant_body
from tests.utils.record_requests import signed_record_request
from tests.utils.records import fetch, grant, upload

OCTOBER, JUNE = "2026-10-15", "2026-06-02"
EPISODE = (day_number(date(2026, 10, 1)), day_number(date(2026, 10, 31)))


def _domain(world: World) -> dict[str, object]:
    return {"chain_id": world.node.node.chain_id, "contract": world.manifest.address("ConsentRegistry")}


def _relay(world: World, body: dict) -> object:
    with world.node.member_client(world.a.account) as client:
        return client.post("/v1/consents", json=body)


def _grant_body(world: World, grantees: tuple[str, ...], **terms: object) -> dict:
    nonce = world.chain_as(world.stranger).consents.nonce(world.patient.address)
    message = grant_message(world.patient.address, grantees, nonce=nonce, lasts_s=86_400, **terms)
    return signed_grant_body(world.patient, message, **_domain(world))


def test_the_privacy_notice_is_served_and_a_grant_is_relayed_only_under_the_one_in_force(world: World) -> None:
    with world.node.anonymous() as client:
        current = client.get("/v1/privacy-notice").json()
        assert client.get("/v1/privacy-notice/1").json() == current
        missing = client.get("/v1/privacy-notice/2")
    assert (current["version"], current["current"]) == (1, True)
    assert (
        set(current["text"]) == {"en", "zh"} and "PIPL" in current["text"]["en"] and "告知书" in current["text"]["zh"]
    )
    assert current["sha256"] == privacy_notice.notice_hash(1, current["text"]).hex()
    assert (missing.status_code, missing.json()["code"]) == (404, "notice-not-found")

    body = _grant_body(world, (world.b.address,))
    for wrong in ({"notice_hash": "ab" * 32}, {"notice_version": 2}):
        refused = _relay(world, {**body, **wrong})
        assert (refused.status_code, refused.json()["code"]) == (422, "notice-not-current"), wrong
    assert _relay(world, body).status_code == 202
    world.node.drain()
    with world.node.patient_client(world.patient) as client:
        (consent,) = client.get(f"/v1/patients/{world.patient.address}/consents").json()
    assert (consent["notice_version"], consent["notice_hash"]) == (1, current["sha256"])
    assert consent["grantees"] == [world.b.address]


def test_a_grant_covers_the_members_it_names_and_one_that_joins_later_needs_a_new_grant(world: World) -> None:
    record_id = upload(world).json()["id"]
    assert _relay(world, _grant_body(world, (world.b.address, world.c.address))).status_code == 202
    world.node.drain()
    joiner = Account.create()
    world.backend.fund(joiner.address, 10**18)
    proposed = world.chain_as(world.a.account).registry.propose_add_member(
        joiner.address, Role.MEMBER, "Dapeng Maternity Clinic", "https://maternity.example", X25519_KEY
    )
    proposal = proposed.event("ProposalCreated").args["proposalId"]
    world.chain_as(world.b.account).registry.vote(proposal, True)
    world.chain_as(world.c.account).registry.execute(proposal)

    assert fetch(world, world.b, record_id).status_code == 200
    assert fetch(world, world.c, record_id).status_code == 200
    with world.node.member_client(joiner) as client:  # a member now, and named in nothing
        joined = client.get(f"/v1/records/{record_id}/content", params={"purpose": "treatment", "clinician": "dr-new"})
        permission = client.get(
            "/v1/permissions",
            params={
                "patient": world.patient.address,
                "requester": joiner.address,
                "category": "labs",
                "purpose": "treatment",
            },
        ).json()
    assert joined.status_code == 403 and permission["permitted"] is False

    stranger_named = _grant_body(world, (world.b.address, world.stranger.address))
    refused = _relay(world, stranger_named)
    assert (refused.status_code, refused.json()["code"]) == (422, "grantee-not-member")
    assert world.stranger.address in refused.json()["detail"]
    twice = _relay(world, {**_grant_body(world, (world.b.address,)), "grantees": [world.b.address] * 2})
    assert twice.status_code == 422  # a member named twice: refused before any signature is checked


def test_a_grant_for_days_of_care_releases_only_the_records_of_those_days(world: World) -> None:
    october = upload(world, last_encounter=OCTOBER).json()
    june = upload(world, last_encounter=JUNE).json()
    assert (october["encounter_date"], june["encounter_date"]) == (OCTOBER, JUNE)
    body = _grant_body(world, (world.b.address,), care_from=EPISODE[0], care_to=EPISODE[1])
    assert (body["care_from"], body["care_to"]) == ("2026-10-01", "2026-10-31")
    assert _relay(world, body).status_code == 202
    world.node.drain()

    assert fetch(world, world.b, october["id"]).status_code == 200
    assert fetch(world, world.b, june["id"]).status_code == 403
    with world.node.member_client(world.b.account) as client:
        listed = [r["id"] for r in client.get(f"/v1/patients/{world.patient.address}/records").json()]
        asked = {
            day: client.get(
                "/v1/permissions",
                params={
                    "patient": world.patient.address,
                    "requester": world.b.address,
                    "category": "labs",
                    "purpose": "treatment",
                    "care_on": day,
                },
            ).json()["permitted"]
            for day in ("2026-10-01", "2026-10-31", "2026-11-01")
        }
    assert listed == [october["id"]]
    assert asked == {"2026-10-01": True, "2026-10-31": True, "2026-11-01": False}
    with world.node.patient_client(world.patient) as client:
        (consent,) = client.get(f"/v1/patients/{world.patient.address}/consents").json()
        bundle = client.get("/v1/audit/fhir/Consent", params={"patient": world.patient.address}).json()
    assert (consent["care_from"], consent["care_to"]) == ("2026-10-01", "2026-10-31")
    (resource,) = [entry["resource"] for entry in bundle["entry"]]  # validated as R4 by the node
    assert resource["provision"]["dataPeriod"] == {"start": "2026-10-01", "end": "2026-10-31"}
    assert resource["policy"] == [{"uri": f"urn:medledger:privacy-notice:1:sha256:{consent['notice_hash']}"}]
    assert [a["reference"]["identifier"]["value"] for a in resource["provision"]["actor"]] == [world.b.address.lower()]

    reversed_days = _grant_body(world, (world.b.address,), care_from=EPISODE[1], care_to=EPISODE[0])
    refused = _relay(world, reversed_days)
    assert (refused.status_code, refused.json()["code"]) == (422, "care-range-invalid")
    beyond = _relay(world, {**body, "care_to": "8612-04-12"})  # past the last day a uint16 counts
    assert beyond.status_code == 422 and "care_to" in beyond.text
    with world.node.member_client(world.b.account) as client:
        asked = client.get(
            "/v1/permissions",
            params={
                "patient": world.patient.address,
                "requester": world.b.address,
                "category": "labs",
                "purpose": "treatment",
                "care_on": "8612-04-12",
            },
        )
    assert (asked.status_code, asked.json()["code"]) == (422, "care-day-invalid")


def _hiding(world: World, record_id: str, hidden: bool, signer=None) -> dict:
    return signed_record_request(
        signer or world.patient, world.patient.address, record_id, **_domain(world), hidden=hidden
    )


def test_a_hidden_record_is_released_under_no_consent_yet_reaches_its_custodian_and_a_break_glass(world: World) -> None:
    hidden_one = upload(world).json()["id"]
    shared = upload(world).json()["id"]
    grant(world, (world.b.address, world.c.address), categories=bitset([Category.LABS]))
    assert fetch(world, world.b, hidden_one).status_code == 200

    with world.node.patient_client(world.patient) as client:
        forged = client.post(f"/v1/records/{hidden_one}/hiding", json=_hiding(world, hidden_one, True, world.stranger))
        assert (forged.status_code, forged.json()["code"]) == (403, "signature-wrong-signer")
        request = _hiding(world, hidden_one, True)
        hidden = client.post(f"/v1/records/{hidden_one}/hiding", json=request)
        assert hidden.status_code == 200 and hidden.json()["hidden"] is True, hidden.text
        replay = client.post(f"/v1/records/{hidden_one}/hiding", json=request)
        assert (replay.status_code, replay.json()["code"]) == (409, "restriction-request-stale")
        again = client.post(f"/v1/records/{hidden_one}/hiding", json=_hiding(world, hidden_one, True))
        assert (again.status_code, again.json()["code"]) == (409, "hiding-unchanged")
    world.node.drain()
    assert world.chain_as(world.stranger).records.is_hidden(bytes.fromhex(hidden_one))

    assert fetch(world, world.b, hidden_one).status_code == 403
    assert fetch(world, world.b, shared).status_code == 200  # the patient's other records stay shared
    with world.node.member_client(world.b.account) as client:
        listed = [r["id"] for r in client.get(f"/v1/patients/{world.patient.address}/records").json()]
    assert listed == [shared]
    assert fetch(world, world.a, hidden_one).status_code == 200  # the custodian's own care
    world.chain_as(world.c.account).consents.declare_break_glass(world.patient.address, b"\x01" * 32)
    emergency = fetch(world, world.c, hidden_one)
    assert emergency.status_code == 200 and emergency.headers["X-MedLedger-Basis"] == "break_glass"

    with world.node.patient_client(world.patient) as client:
        shown = client.post(f"/v1/records/{hidden_one}/hiding", json=_hiding(world, hidden_one, False))
        assert shown.status_code == 200 and shown.json()["hidden"] is False
        history = client.get(f"/v1/patients/{world.patient.address}/access-log").json()
    assert [e["action"] for e in history if e["record_id"] == hidden_one].count("hide") == 1
    assert fetch(world, world.b, hidden_one).status_code == 200


def test_the_audit_finds_a_release_outside_the_days_of_care_and_one_of_a_hidden_record(world: World) -> None:
    june = upload(world, last_encounter=JUNE).json()["id"]
    october = upload(world, last_encounter=OCTOBER).json()["id"]
    consent_id = grant(world, world.b.address, categories=bitset([Category.LABS]))  # every day of care
    limited = grant_message(world.patient.address, world.b.address, nonce=0, care_from=EPISODE[0], care_to=EPISODE[1])
    granted = world.chain_as(world.patient).consents.grant(world.patient.address, GrantTerms.of(limited))
    limited_id = granted.event("ConsentGranted").args["consentId"]
    world.node.drain()
    assert _codes(_audit(world)) == set()
    _log_as_if_released(world, _read_by_b(world, june, authorization=f"{limited_id:064x}", category=Category.LABS))
    assert _codes(_audit(world)) == {"consent-care-range"}
    with world.node.patient_client(world.patient) as client:
        assert client.post(f"/v1/records/{october}/hiding", json=_hiding(world, october, True)).status_code == 200
    world.node.drain()
    _log_as_if_released(world, _read_by_b(world, october, authorization=f"{consent_id:064x}", category=Category.LABS))
    assert _codes(_audit(world)) == {"consent-care-range", "release-while-hidden"}
