"""Records are kept as long as the law says: no erasure within retention (the patient's request restricts
instead), shredding by itself after it, and earlier only under a legal order two more people sign."""

from __future__ import annotations

from datetime import date

from medledger_crypto import recover_typed, sign_typed
from sqlmodel import select

from ledger_api.access.models import AccessEntry
from ledger_api.core.db import session_scope
from ledger_api.records import legal_orders
from ledger_api.records.erasure import shred_expired
from ledger_api.records.models import ErasureOrder
from tests.api.conftest import World
from tests.utils.records import PAST_RETENTION, upload

ORDER = {
    "reference": "(2026) 粤0306民初1234号",
    "authority": "宝安区人民法院",
    "issued_on": "2026-11-02",
    "filed_by": "clerk-wang",
}


def _entries(world: World, record_id: str) -> list[tuple[str, str]]:
    with session_scope(world.node.node.engine) as session:
        rows = session.exec(
            select(AccessEntry).where(AccessEntry.record_id == record_id).order_by(AccessEntry.sequence)
        )
        return [(e.action, e.clinician) for e in rows]


def test_within_retention_the_custodian_cannot_erase_and_the_patients_request_restricts(world: World) -> None:
    record_id = upload(world, record_kind="outpatient", last_encounter="2020-02-29").json()["id"]
    with world.node.member_client(world.a.account) as client:
        refused = client.delete(f"/v1/records/{record_id}")
        future = client.post(
            "/v1/records",
            content=b"x",
            headers={"content-type": "application/octet-stream"},
            params={
                "patient": world.patient.address,
                "category": "labs",
                "media_type": "text/plain",
                "last_encounter": "2999-01-01",
            },
        )
    assert refused.status_code == 409 and refused.json()["retention_until"] == "2035-02-28"  # 15 years, no 29 Feb
    assert future.status_code == 422 and future.json()["code"] == "encounter-in-future"
    with world.node.patient_client(world.patient) as client:
        request = client.delete(f"/v1/records/{record_id}")
        shown = client.get(f"/v1/records/{record_id}").json()
    assert request.status_code == 200 and request.json()["action"] == "restrict"
    assert shown["restricted"] is True and shown["erased"] is False
    assert _entries(world, record_id) == [("restrict", "patient")]


def test_the_retention_job_shreds_only_what_is_past_its_retention_end(world: World) -> None:
    expired = upload(world, **PAST_RETENTION).json()["id"]
    kept = upload(world, record_kind="inpatient", last_encounter="2000-01-03").json()["id"]  # until 2030
    assert shred_expired(world.node.node, on=date(2026, 11, 30)) == 1
    assert _entries(world, expired) == [("erase", "retention-ended")]
    assert _entries(world, kept) == []
    assert shred_expired(world.node.node, on=date(2030, 1, 4)) == 1  # its day came
    world.node.drain()
    # each erasure is an entry of the trail, anchored like any other
    with world.node.member_client(world.a.account) as client:
        log = client.get(f"/v1/patients/{world.patient.address}/access-log").json()
    assert sorted((e["record_id"], e["action"], e["anchoring"]) for e in log) == sorted(
        [(expired, "erase", "anchored"), (kept, "erase", "anchored")]
    )
    assert world.chain_as(world.stranger).trail.last_sequence(world.a.address) == 2


def test_a_legal_order_erases_early_only_with_a_second_officer_and_an_auditor(world: World) -> None:
    record_id = upload(world).json()["id"]
    with world.node.member_client(world.a.account) as client:
        order = client.post(f"/v1/records/{record_id}/erasure-orders", json=ORDER).json()
        with session_scope(world.node.node.engine) as session:
            stored = session.get(ErasureOrder, order["id"])
        document = legal_orders.countersign_document(
            stored, chain_id=world.node.node.chain_id, contract=world.manifest.address("ConsentRegistry")
        )
        v, r, s = sign_typed(world.officer, document)
        signature = {"v": v, "r": r.hex(), "s": s.hex()}
        self_signed = client.post(
            f"/v1/erasure-orders/{order['id']}/countersignature", json={"officer": "clerk-wang", "signature": signature}
        )
        forged = client.post(
            f"/v1/erasure-orders/{order['id']}/countersignature",
            json={"officer": "officer-li", "signature": {**signature, "r": "11" * 32}},
        )
        countersigned = client.post(
            f"/v1/erasure-orders/{order['id']}/countersignature", json={"officer": "officer-li", "signature": signature}
        )
    assert self_signed.status_code == 403 and forged.status_code in (403, 422)
    assert countersigned.status_code == 200 and countersigned.json()["state"] == "pending"  # no auditor yet
    approval = f"/v1/erasure-orders/{order['id']}/approval"
    v, r, s = sign_typed(world.ids.auditor.account, document)
    with world.node.member_client(world.ids.auditor.account) as auditor:
        waiting = auditor.get("/v1/erasure-orders", params={"state": "pending"}).json()
        assert [(o["id"], o["countersigned_by"], o["approved_by"]) for o in waiting] == [
            (order["id"], "officer-li", None)
        ]
        unsigned = auditor.post(approval, json={})
        officers = auditor.post(approval, json={"signature": signature})  # a valid signature, not the auditor's
        approved = auditor.post(approval, json={"signature": {"v": v, "r": r.hex(), "s": s.hex()}})
    assert unsigned.status_code == 422
    assert officers.status_code == 403 and officers.json()["code"] == "signature-wrong-signer"
    assert approved.status_code == 200 and approved.json()["state"] == "executed"
    assert _entries(world, record_id) == [("erase", "legal-order")]
    with world.node.member_client(world.a.account) as client:
        assert client.get(f"/v1/records/{record_id}").json()["erased"] is True
        kept = client.get(f"/v1/erasure-orders/{order['id']}").json()
        assert client.get("/v1/erasure-orders", params={"state": "pending"}).json() == []
        assert [o["id"] for o in client.get("/v1/erasure-orders", params={"state": "executed"}).json()] == [order["id"]]
    # the order keeps both signatures: anyone holding it checks who approved it, without the custodian's word
    for packed, account in ((kept["countersignature"], world.officer), (kept["approval_signature"], world.ids.auditor)):
        raw = bytes.fromhex(packed)
        assert recover_typed(document, raw[64], raw[:32], raw[32:64]) == account.address
