"""A leaving member hands its records to a successor: data, keys and custody move; consents and trail survive.

A holds records (one with two versions, one erased); B reads one under the patient's consent; then
A hands everything over to B. Afterwards B serves the records as their custodian (decrypting what
A sealed), the chain names B, A has crypto-shredded its copies and answers 410, the patient's
consent is untouched, and the auditor's verification of both members' trails passes.
"""

from __future__ import annotations

import json
import time
from datetime import date

import httpx
from medledger_crypto import HpkePublicKey
from sqlmodel import select

from ledger_api.audit.chain_view import read_chain
from ledger_api.audit.report_schema import MemberExport
from ledger_api.audit.verify import verify
from ledger_api.consortium.peers import peer_client
from ledger_api.core import headers as header_names
from ledger_api.core.db import session_scope
from ledger_api.custody.handover import _push
from ledger_api.errors import LedgerError
from ledger_api.records.models import Record, WrappedKey
from ledger_api.vocabulary import Category, bitset
from tests.consortium.conftest import TwoNodes
from tests.consortium.test_cross_member import STUDY, _fetch_via_b, _upload
from tests.utils.record_requests import signed_record_request
from tests.utils.records import PAST_RETENTION, open_release

LABS = b"creatinine 88 umol/L; eGFR 79" * 200


def _local(world: TwoNodes, slug: str) -> httpx.Client:
    node = world.a if slug == "a" else world.b
    return node.member_client(world.ids.members[slug].account)


def _agree(world: TwoNodes, *, max_records: int = 100, max_bytes: int = 64 << 20) -> dict:
    """B's own system agrees to take A's records (the only pushes B's node accepts)."""
    with _local(world, "b") as client:
        agreed = client.post(
            "/v1/custody/agreements",
            json={"predecessor": world.ids.members["a"].address, "max_records": max_records, "max_bytes": max_bytes},
        )
    assert agreed.status_code == 201, agreed.text
    return agreed.json()


def _hand_over(world: TwoNodes) -> dict:
    _agree(world)
    with _local(world, "a") as client:
        started = client.post("/v1/custody/handovers", json={"successor": world.ids.members["b"].address})
        assert started.status_code == 202, started.text
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            world.a.drain()
            state = client.get(f"/v1/custody/handovers/{started.json()['id']}").json()
            if state["state"] != "running":
                return state
            time.sleep(0.1)
    raise AssertionError("the handover did not finish")


def _read_locally(world: TwoNodes, slug: str, record_id: str) -> httpx.Response:
    with _local(world, slug) as client:
        return client.get(f"/v1/records/{record_id}/content", params={"purpose": "treatment", "clinician": "dr-he"})


def test_a_leaving_member_hands_its_records_to_a_successor(two_nodes: TwoNodes) -> None:
    world = two_nodes
    labs = _upload(world, LABS, Category.LABS)
    with _local(world, "a") as client:
        assert (
            client.post(
                f"/v1/records/{labs}/versions",
                content=LABS + b" (amended)",
                headers={"content-type": "application/octet-stream"},
            ).status_code
            == 201
        )
    imaging = _upload(world, STUDY, Category.IMAGING)
    erased = _upload(world, b"wrong patient", Category.NOTES, **PAST_RETENTION)
    with _local(world, "a") as client:
        assert client.delete(f"/v1/records/{erased}").status_code == 200
    world.a.drain()
    consent_id = world.grant_b(bitset([Category.LABS]))
    assert _fetch_via_b(world, labs).status_code == 200
    with world.a.patient_client(world.patient) as portal:  # the patient hides the study from every consent
        hiding = signed_record_request(
            world.patient,
            world.patient.address,
            imaging,
            chain_id=world.a.node.chain_id,
            contract=world.a.node.manifest.address("ConsentRegistry"),
            hidden=True,
        )
        assert portal.post(f"/v1/records/{imaging}/hiding", json=hiding).status_code == 200
    world.a.drain()

    state = _hand_over(world)
    assert state["state"] == "done", state
    assert (state["records_total"], state["records_sent"], state["records_transferred"]) == (2, 2, 2)

    chain = world.a.node.chain
    assert {chain.records.record(bytes.fromhex(r)).custodian for r in (labs, imaging)} == {world.b.node.address}
    assert chain.records.record(bytes.fromhex(erased)).custodian == world.a.node.address  # nothing to hand over
    # B serves both, as custodian, decrypting what A sealed
    b_member = world.ids.members["b"]
    for record_id, expected in ((labs, LABS + b" (amended)"), (imaging, STUDY)):
        response = _read_locally(world, "b", record_id)
        assert response.status_code == 200, response.text
        assert response.headers[header_names.CUSTODIAN] == world.b.node.address
        assert response.headers[header_names.SEALED_BY] == world.a.node.address
        assert open_release(response, b_member) == expected
    first = _read_locally(world, "b", labs)
    with _local(world, "b") as client:
        v1 = client.get(
            f"/v1/records/{labs}/content", params={"purpose": "treatment", "clinician": "dr-he", "version": 1}
        )
        listed = client.get(f"/v1/patients/{world.patient.address}/records").json()
    assert open_release(v1, b_member) == LABS and first.status_code == 200
    assert {(r["id"], r["custody"], r["latest_version"]) for r in listed} == {(labs, "held", 2), (imaging, "held", 1)}
    # the day of care its anchor binds and the patient's hiding came with each record
    today = date.today().isoformat()
    assert {r["id"]: (r["encounter_date"], r["hidden"]) for r in listed} == {
        labs: (today, False),
        imaging: (today, True),
    }
    # A keeps nothing it could open, and points at the successor
    moved = _read_locally(world, "a", labs)
    assert moved.status_code == 410 and moved.json()["code"] == "custody-moved"
    assert world.b.node.address in moved.json()["detail"]
    with session_scope(world.a.node.engine) as session:
        assert not list(session.exec(select(WrappedKey)))
    assert not list(world.a.node.blob_dir.rglob("*.bin"))
    with _local(world, "a") as client:
        remaining = client.get(f"/v1/patients/{world.patient.address}/records").json()
        assert [(r["id"], r["erased"]) for r in remaining] == [(erased, True)]
        log = client.get("/v1/access-log").json()
    handovers = [e for e in log if e["action"] == "handover"]
    assert {(e["record_id"], e["requester"]) for e in handovers} == {
        (labs, world.b.node.address),
        (imaging, world.b.node.address),
    }
    # the patient's consent is the patient's: untouched
    assert (
        chain.consents.permitting_consent(world.patient.address, world.b.node.address, int(Category.LABS), 0)
        == consent_id
    )
    # an auditor verifies both trails and both stores against the chain
    world.a.drain()
    world.b.drain()
    exports = []
    for node in (world.a, world.b):
        with node.member_client(world.ids.auditor.account) as client:
            entries = [json.loads(line) for line in client.get("/v1/access-log/export").text.splitlines()]
            records = [json.loads(line) for line in client.get("/v1/audit/records").text.splitlines()]
        exports.append(MemberExport(node.node.address, entries, records))
    report = verify(read_chain(world.backend.w3, world.a.node.manifest), world.a.node.chain_id, exports, None)
    assert report.passed, report.findings
    assert {m.member: m.records_checked for m in report.members}[world.b.node.address] == 3


def test_the_successor_takes_only_what_the_chain_and_the_bytes_confirm(two_nodes: TwoNodes) -> None:
    world = two_nodes
    labs = _upload(world, LABS, Category.LABS)
    _agree(world)
    with _local(world, "a") as client:  # the custodian's own system sees the salt that opens the anchor
        salt = client.get(f"/v1/records/{labs}").json()["subject_salt"]
    params = {"media_type": "text/plain", "sealed_by": world.a.node.address}
    headers = {
        "content-type": "application/octet-stream",
        header_names.WRAPPED_KEY: "AAAA" * 8,
        header_names.PATIENT: world.patient.address,
        header_names.CATEGORY: str(int(Category.LABS)),
        header_names.SUBJECT_SALT: salt,
    }
    path = f"/v1/custody/incoming/{labs}/versions/1"
    # not the custodian on chain (C's key; B's own system)
    for slug in ("c", "b"):
        with world.b.member_client(world.ids.members[slug].account) as client:
            response = client.put(path, params=params, content=b"x", headers=headers)
        assert response.status_code == 403, response.text
    with world.b.member_client(world.ids.members["a"].account) as client:
        wrong_patient = client.put(
            path, params=params, content=b"x", headers={**headers, header_names.PATIENT: world.ids.members["c"].address}
        )
        wrong_category = client.put(
            path, params=params, content=b"x", headers={**headers, header_names.CATEGORY: str(int(Category.IMAGING))}
        )
        wrong_salt = client.put(
            path, params=params, content=b"x", headers={**headers, header_names.SUBJECT_SALT: "0" * 64}
        )
        wrong_bytes = client.put(path, params=params, content=b"not the anchored ciphertext", headers=headers)
        unanchored = client.put(
            f"/v1/custody/incoming/{'ab' * 32}/versions/1", params=params, content=b"x", headers=headers
        )
    for relabelled in (wrong_patient, wrong_category, wrong_salt):  # none opens the anchored commitment
        assert relabelled.status_code == 422 and relabelled.json()["code"] == "anchor-mismatch", relabelled.text
    assert wrong_bytes.status_code == 422 and "anchored" in wrong_bytes.json()["detail"]
    assert unanchored.status_code == 422 and "not anchored" in unanchored.json()["detail"]
    with world.b.member_client(world.ids.members["b"].account) as client:
        assert client.get(f"/v1/records/{labs}").status_code == 404  # nothing was stored
    assert not [p for p in world.b.node.blob_dir.rglob("*") if p.is_file()]


def test_a_handover_needs_an_active_successor_and_the_members_own_system(two_nodes: TwoNodes) -> None:
    world = two_nodes
    with _local(world, "a") as client:
        to_self = client.post("/v1/custody/handovers", json={"successor": world.a.node.address})
        to_auditor = client.post("/v1/custody/handovers", json={"successor": world.ids.auditor.address})
        bad = client.post("/v1/custody/handovers", json={"successor": "B"})
    assert to_self.status_code == 422 and "itself" in to_self.json()["detail"]
    assert to_auditor.status_code == 404
    assert bad.status_code == 422 and "successor" in bad.json()["detail"]
    with world.a.member_client(world.ids.members["b"].account) as client:
        assert client.post("/v1/custody/handovers", json={"successor": world.b.node.address}).status_code == 403


def test_the_handover_runs_from_the_cli_with_progress(two_nodes: TwoNodes, tmp_path, monkeypatch) -> None:
    from medledger_crypto import DEV_SCRYPT
    from typer.testing import CliRunner

    from ledger_api.cli import app

    world = two_nodes
    records = [_upload(world, LABS + bytes([i]), Category.LABS) for i in range(3)]
    _agree(world)
    key = tmp_path / "a.json"
    world.ids.members["a"].save(key, "member passphrase for tests 7", params=DEV_SCRYPT)
    monkeypatch.setenv("MEDLEDGER_KEYSTORE_PASSPHRASE", "member passphrase for tests 7")
    world.a.worker.start()  # the outbox sends the custody transfer while the CLI follows along
    try:
        result = CliRunner().invoke(
            app,
            [
                "record",
                "handover",
                "--to",
                world.ids.members["b"].address,
                "--identity",
                str(key),
                "--node",
                world.a.url,
            ],
        )
    finally:
        world.a.worker.stop()
    assert result.exit_code == 0, result.output
    assert "done; 3 of 3 records sent, 3 transferred on chain" in result.output
    assert {world.a.node.chain.records.record(bytes.fromhex(r)).custodian for r in records} == {world.b.node.address}


def _push_one(world: TwoNodes, record_id: str) -> LedgerError | None:
    """A's node pushes every version of ``record_id`` to B as its handover does; B's refusal, if any."""
    with session_scope(world.a.node.engine) as session:
        record = session.get(Record, record_id)
    assert record is not None
    successor = world.a.node.chain.registry.member(world.b.node.address)
    try:
        _push(
            world.a.node,
            peer_client(world.a.node, successor),
            successor,
            HpkePublicKey.from_bytes(successor.hpke_public_key),
            record,
        )
    except LedgerError as refused:
        return refused
    return None


def test_a_push_nobody_agreed_to_is_refused_and_nothing_is_stored(two_nodes: TwoNodes) -> None:
    """The attack: any member pushed records into another's store, which then served them as its own."""
    world = two_nodes
    labs = _upload(world, LABS, Category.LABS)
    refused = _push_one(world, labs)
    assert refused is not None and "not agreed" in str(refused)
    assert not [p for p in world.b.node.blob_dir.rglob("*") if p.is_file()]
    with _local(world, "b") as client:
        assert client.get(f"/v1/records/{labs}").status_code == 404


def test_pushes_beyond_the_agreed_quotas_or_after_withdrawal_are_refused(two_nodes: TwoNodes) -> None:
    world = two_nodes
    first, second, third = (_upload(world, LABS + bytes([i]), Category.LABS) for i in range(3))
    agreement = _agree(world, max_records=1)
    assert _push_one(world, first) is None
    over_count = _push_one(world, second)
    assert over_count is not None and "allows 1 records" in str(over_count)
    with _local(world, "b") as client:
        listed = client.get("/v1/custody/agreements").json()
        assert [(a["records_received"], a["active"]) for a in listed] == [(1, True)]
        assert listed[0]["bytes_received"] > 0
        assert client.delete(f"/v1/custody/agreements/{agreement['id']}").json()["active"] is False
    _agree(world, max_records=10, max_bytes=100)  # fewer bytes than one version
    over_bytes = _push_one(world, second)
    assert over_bytes is not None and "bytes" in str(over_bytes)
    with _local(world, "b") as client:
        for agreement_row in client.get("/v1/custody/agreements").json():
            client.delete(f"/v1/custody/agreements/{agreement_row['id']}")
    withdrawn = _push_one(world, third)
    assert withdrawn is not None and "not agreed" in str(withdrawn)
    stored = {p.parent.name for p in world.b.node.blob_dir.rglob("*.bin")}
    assert stored == {first}
