"""Scoped delegates (issue: consent v2, 5): a patient appoints a guardian to view or to manage, until a date,
kept from some categories of records; the node applies the same scope the contract does, at the moment the
delegate acts or reads, and every act of a delegate stands in the patient's history as theirs."""

from __future__ import annotations

import base64
import time

from medledger_crypto import DelegateChange, HpkePrivateKey, HpkeSuite, sign_typed

from ledger_api.access.models import AccessEntryBase
from ledger_api.core import headers as header_names
from ledger_api.vocabulary import Category, bitset
from tests.api.conftest import World
from tests.api.test_audit import _audit, _codes, _log_as_if_released
from tests.utils.actors import manages, views
from tests.utils.consents import grant_message, signature_json, signed_grant_body
from tests.utils.record_requests import signed_record_request
from tests.utils.records import upload

MENTAL = bitset([Category.MENTAL_HEALTH])


def _domain(world: World) -> dict[str, object]:
    return {"chain_id": world.node.node.chain_id, "contract": world.manifest.address("ConsentRegistry")}


def _nonce(world: World) -> int:
    return world.chain_as(world.stranger).consents.nonce(world.patient.address)


def _delegation_body(world: World, delegate: str, scope: str, *, signer=None, **terms: int) -> dict:
    numbers = {"none": 0, "view": 1, "manage": 2}
    deadline = int(time.time()) + 600
    message = DelegateChange(
        patient=world.patient.address,
        delegate=delegate,
        scope=numbers[scope],
        nonce=_nonce(world),
        deadline=deadline,
        **terms,
    )
    signature = sign_typed(signer or world.patient, message.document(**_domain(world)))
    return {
        "patient": world.patient.address,
        "delegate": delegate,
        "scope": scope,
        **terms,
        "nonce": message.nonce,
        "deadline": deadline,
        "signature": signature_json(signature),
    }


def _grant_signed_by(world: World, signer, categories: int) -> dict:
    message = grant_message(world.patient.address, world.b.address, nonce=_nonce(world), categories=categories)
    return signed_grant_body(signer, message, **_domain(world))


def _copy(world: World, account, record_id: str):  # type: ignore[no-untyped-def]
    reader = HpkePrivateKey.generate(HpkeSuite.X25519)
    with world.node.patient_client(account) as client:
        return client.get(
            f"/v1/patients/{world.patient.address}/records/{record_id}/content",
            headers={header_names.READER_KEY: base64.b64encode(reader.public_key().to_bytes()).decode()},
        )


def test_the_patient_appoints_a_guardian_to_view_until_a_date_kept_from_mental_health(world: World) -> None:
    guardian = world.stranger
    end = int(time.time()) + 30 * 86_400
    with world.node.patient_client(world.patient) as client:
        body = _delegation_body(world, guardian.address, "view", valid_until=end, excluded_categories=MENTAL)
        assert client.post("/v1/delegates", json=body).status_code == 202
        world.node.drain()
        listed = client.get(f"/v1/patients/{world.patient.address}/delegates").json()["delegates"]
        assert listed == [
            {"delegate": guardian.address, "scope": "view", "valid_until": end, "excluded_categories": MENTAL}
        ]
        again = client.post(
            "/v1/delegates",
            json=_delegation_body(world, guardian.address, "view", valid_until=end, excluded_categories=MENTAL),
        )
        assert (again.status_code, again.json()["code"]) == (409, "delegation-unchanged")
        past = client.post("/v1/delegates", json=_delegation_body(world, guardian.address, "view", valid_until=1))
        assert (past.status_code, past.json()["code"]) == (422, "delegation-end-passed")
        odd = client.post(
            "/v1/delegates", json=_delegation_body(world, guardian.address, "none", excluded_categories=MENTAL)
        )
        assert (odd.status_code, odd.json()["code"]) == (422, "delegation-invalid")
        by_guardian = client.post(
            "/v1/delegates", json=_delegation_body(world, world.other_patient.address, "manage", signer=guardian)
        )
        assert (by_guardian.status_code, by_guardian.json()["code"]) == (403, "signature-wrong-signer")


def test_a_viewing_guardian_sees_all_but_the_kept_categories_and_decides_nothing(world: World) -> None:
    guardian = world.stranger
    labs = upload(world).json()["id"]
    mental = upload(world, body=b"session notes", category=Category.MENTAL_HEALTH).json()["id"]
    world.chain_as(world.patient).consents.set_delegate(views(guardian.address, excluded_categories=MENTAL))

    with world.node.patient_client(guardian) as client:
        listed = [r["id"] for r in client.get(f"/v1/patients/{world.patient.address}/records").json()]
        assert listed == [labs]
        consents = client.get(f"/v1/patients/{world.patient.address}/consents")
        assert consents.status_code == 200
        grant = client.post("/v1/consents", json=_grant_signed_by(world, guardian, bitset([Category.LABS])))
        assert (grant.status_code, grant.json()["code"]) == (403, "delegate-may-only-view")
        hide = client.post(
            f"/v1/records/{labs}/hiding",
            json=signed_record_request(guardian, world.patient.address, labs, **_domain(world), hidden=True),
        )
        assert (hide.status_code, hide.json()["code"]) == (403, "delegate-may-only-view")
    assert _copy(world, guardian, labs).status_code == 200
    kept = _copy(world, guardian, mental)
    assert (kept.status_code, kept.json()["code"]) == (404, "record-not-found")  # as if it did not exist
    assert _copy(world, world.patient, mental).status_code == 200  # the patient's own, of course

    with world.node.patient_client(guardian) as client:
        history = client.get(f"/v1/patients/{world.patient.address}/access-log").json()
    assert {e["record_id"] for e in history} == {labs}  # nothing about the kept record, not even its copy
    with world.node.patient_client(world.patient) as client:
        history = client.get(f"/v1/patients/{world.patient.address}/access-log").json()
    assert {e["record_id"] for e in history} == {labs, mental}


def test_a_managing_guardian_decides_except_on_the_kept_categories_and_each_act_is_theirs(world: World) -> None:
    guardian = world.stranger
    labs = upload(world).json()["id"]
    world.chain_as(world.patient).consents.set_delegate(manages(guardian.address, excluded_categories=MENTAL))

    with world.node.patient_client(guardian) as client:
        kept = client.post("/v1/consents", json=_grant_signed_by(world, guardian, bitset([Category.LABS]) | MENTAL))
        assert (kept.status_code, kept.json()["code"]) == (403, "delegate-category-excluded")
        granted = client.post("/v1/consents", json=_grant_signed_by(world, guardian, bitset([Category.LABS])))
        assert granted.status_code == 202, granted.text
        world.node.drain()
        hidden = client.post(
            f"/v1/records/{labs}/hiding",
            json=signed_record_request(guardian, world.patient.address, labs, **_domain(world), hidden=True),
        )
        assert hidden.status_code == 200, hidden.text
    world.node.drain()

    with world.node.patient_client(world.patient) as client:
        changes = client.get(f"/v1/patients/{world.patient.address}/account-history").json()
        trail = client.get(f"/v1/patients/{world.patient.address}/access-log").json()
    assert [(c["kind"], c["by"], c["signer"]) for c in changes] == [
        ("grant", "delegate", guardian.address),
        ("delegate", "patient", world.patient.address),
    ]
    assert changes[1]["delegate"] == {
        "delegate": guardian.address,
        "scope": "manage",
        "valid_until": 0,
        "excluded_categories": MENTAL,
    }
    hides = [e for e in trail if e["action"] == "hide"]
    assert [(e["requester"], e["basis"]) for e in hides] == [(guardian.address, "patient")]


def test_a_guardian_whose_delegation_ended_is_a_stranger_again(world: World) -> None:
    guardian = world.stranger
    upload(world)
    end = world.chain_as(guardian).consents.reader.block_timestamp(world.backend.w3.eth.block_number) + 3600
    world.chain_as(world.patient).consents.set_delegate(manages(guardian.address, valid_until=end))
    with world.node.patient_client(guardian) as client:
        assert client.get(f"/v1/patients/{world.patient.address}/records").status_code == 200
    world.backend.increase_time(3601)
    with world.node.patient_client(guardian) as client:
        ended = client.get(f"/v1/patients/{world.patient.address}/records")
        assert (ended.status_code, ended.json()["code"]) == (403, "patient-scope")
    with world.node.member_client(world.a.account) as client:  # a hospital passing on what they signed
        grant = client.post("/v1/consents", json=_grant_signed_by(world, guardian, bitset([Category.LABS])))
        assert (grant.status_code, grant.json()["code"]) == (403, "signature-wrong-signer")
    with world.node.patient_client(world.patient) as client:
        assert client.get(f"/v1/patients/{world.patient.address}/delegates").json()["delegates"] == []


def test_the_audit_judges_a_delegates_act_by_the_scope_the_delegate_had_then(world: World) -> None:
    guardian = world.stranger
    labs = upload(world).json()["id"]
    world.chain_as(world.patient).consents.set_delegate(views(guardian.address))
    assert _copy(world, guardian, labs).status_code == 200  # a viewing guardian's copy is theirs to take
    world.node.drain()
    assert _codes(_audit(world)) == set()
    hiding = AccessEntryBase.patient_action(
        record_id=labs,
        version=1,
        category=Category.LABS,
        patient=world.patient.address,
        requester=guardian.address,
        action="hide",
        chain_block=world.node.node.chain.consents.head_block(),  # a viewer then, not a manager
    )
    _log_as_if_released(world, hiding)  # as a node that never asked what the guardian may do would log it
    assert _codes(_audit(world)) == {"patient-basis-misused"}
