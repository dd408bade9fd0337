"""Consent relays: patient-signed grants, revocations and delegations, checked before relaying."""

from __future__ import annotations

import time

from eth_account.signers.local import LocalAccount
from medledger_crypto import ConsentRevocation, DelegateChange, sign_typed

from ledger_api.vocabulary import Category, Purpose, bitset
from tests.api.conftest import World
from tests.utils.consents import grant_message, signed_grant_body

LABS_ONLY, TREATMENT_ONLY = bitset([Category.LABS]), bitset([Purpose.TREATMENT])


def _signed_grant(world: World, signer: LocalAccount, *, chain_id: int | None = None, **changes) -> dict:
    """A relay body: the patient's grant of labs for treatment to member B, as ``signer`` signed it;
    ``changes``: patient, grantee, nonce, deadline, categories or purposes otherwise."""
    patient = changes.pop("patient", world.patient.address)
    nonce = changes.pop("nonce", None)
    nonce = world.chain_as(world.stranger).consents.nonce(patient) if nonce is None else nonce
    terms = {"grantee": world.b.address, "categories": LABS_ONLY, "purposes": TREATMENT_ONLY, **changes}  # one named
    message = grant_message(patient, terms.pop("grantee"), nonce=nonce, lasts_s=86_400, **terms)
    chain_id = chain_id or world.node.node.chain_id
    return signed_grant_body(signer, message, chain_id=chain_id, contract=world.manifest.address("ConsentRegistry"))


def test_patient_grant_is_relayed_and_goes_from_pending_to_active(world: World) -> None:
    with world.node.patient_client(world.patient) as client:
        relay = client.post("/v1/consents", json=_signed_grant(world, world.patient))
        assert relay.status_code == 202, relay.text
        assert relay.json()["state"] == "pending"
        listed = client.get(f"/v1/patients/{world.patient.address}/consents").json()
        assert [c["status"] for c in listed] == ["pending"]
        world.node.drain()
        assert client.get(f"/v1/relays/{relay.json()['id']}").json()["state"] == "confirmed"
        listed = client.get(f"/v1/patients/{world.patient.address}/consents").json()
    assert [c["status"] for c in listed] == ["active"] and listed[0]["grantees"] == [world.b.address]
    with world.node.member_client(world.a.account) as member:
        answer = member.get(
            "/v1/permissions",
            params={
                "patient": world.patient.address,
                "requester": world.b.address,
                "category": "labs",
                "purpose": "treatment",
            },
        ).json()
    assert answer["permitted"] is True and answer["consent_id"] == listed[0]["consent_id"]


def test_member_may_relay_and_revocation_follows(world: World) -> None:
    with world.node.member_client(world.a.account) as member:
        assert member.post("/v1/consents", json=_signed_grant(world, world.patient)).status_code == 202
        world.node.drain()
        consent_id = int(world.chain_as(world.stranger).consents.consents_of(world.patient.address)[0].consent_id)
        now = int(time.time())
        nonce = world.chain_as(world.stranger).consents.nonce(world.patient.address)
        revocation = ConsentRevocation(
            patient=world.patient.address, consent_id=consent_id, nonce=nonce, deadline=now + 600
        )
        document = revocation.document(
            chain_id=world.node.node.chain_id, contract=world.manifest.address("ConsentRegistry")
        )
        v, r, s = sign_typed(world.patient, document)
        body = {
            "consent_id": str(consent_id),
            "nonce": nonce,
            "deadline": now + 600,
            "signature": {"v": v, "r": r.hex(), "s": s.hex()},
        }
        assert member.post("/v1/consents/revocations", json=body).status_code == 202
        world.node.drain()
        listed = member.get(f"/v1/patients/{world.patient.address}/consents").json()
    assert [c["status"] for c in listed] == ["revoked"]


def test_bad_grants_are_refused_before_relaying(world: World) -> None:
    cases = {
        "stranger's signature": (_signed_grant(world, world.stranger), 403),
        "other chain": (_signed_grant(world, world.patient, chain_id=world.node.node.chain_id + 1), 403),
        "used nonce": (_signed_grant(world, world.patient, nonce=7), 409),
        "passed deadline": (_signed_grant(world, world.patient, deadline=int(time.time()) - 1), 422),
        "grantee not a member": (_signed_grant(world, world.patient, grantee=world.stranger.address), 422),
        "empty scope": ({**_signed_grant(world, world.patient), "categories": 0}, 422),
    }
    with world.node.patient_client(world.patient) as client:
        for name, (body, status) in cases.items():
            response = client.post("/v1/consents", json=body)
            assert response.status_code == status, (name, response.text)
            assert response.headers["content-type"] == "application/problem+json"
        tampered = _signed_grant(world, world.patient)
        tampered["categories"] = 0xFFFF
        assert client.post("/v1/consents", json=tampered).status_code == 403
        other = client.post(
            "/v1/consents", json=_signed_grant(world, world.other_patient, patient=world.other_patient.address)
        )
        assert other.status_code == 403  # a patient relays only their own consents
    world.node.drain()
    assert world.chain_as(world.stranger).consents.consent_count(world.patient.address) == 0


def test_delegate_appointed_by_signature_may_then_grant(world: World) -> None:
    guardian = world.other_patient
    now = int(time.time())
    change = DelegateChange(
        patient=world.patient.address, delegate=guardian.address, scope=2, nonce=0, deadline=now + 600
    )
    document = change.document(chain_id=world.node.node.chain_id, contract=world.manifest.address("ConsentRegistry"))
    v, r, s = sign_typed(world.patient, document)
    with world.node.patient_client(world.patient) as client:
        response = client.post(
            "/v1/delegates",
            json={
                "patient": world.patient.address,
                "delegate": guardian.address,
                "scope": "manage",
                "nonce": 0,
                "deadline": now + 600,
                "signature": {"v": v, "r": r.hex(), "s": s.hex()},
            },
        )
        assert response.status_code == 202, response.text
    world.node.drain()
    with world.node.patient_client(guardian) as client:
        assert client.get(f"/v1/patients/{world.patient.address}/records").status_code == 200
        relay = client.post("/v1/consents", json=_signed_grant(world, guardian))
        assert relay.status_code == 202, relay.text
    world.node.drain()
    assert world.chain_as(world.stranger).consents.is_permitted(world.patient.address, world.b.address, 0, 0)
