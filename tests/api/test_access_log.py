"""The access trail: every release logged, hashed, anchored; patients see it, auditors verify it."""

from __future__ import annotations

import hashlib
import json

from ledger_api.vocabulary import Category, bitset
from tests.api.conftest import World
from tests.utils.records import fetch, grant, upload


def test_every_release_is_logged_anchored_and_exported(world: World) -> None:
    record_id = upload(world).json()["id"]
    grant(world, world.b.address, categories=bitset([Category.LABS]))
    assert fetch(world, world.b, record_id).status_code == 200
    assert fetch(world, world.a, record_id).status_code == 200
    world.chain_as(world.c.account).consents.declare_break_glass(world.patient.address, b"\x07" * 32)
    assert fetch(world, world.c, record_id).status_code == 200
    assert fetch(world, world.c, upload(world, category=Category.GENOMICS).json()["id"]).status_code == 200
    world.node.drain()
    with world.node.patient_client(world.patient) as client:
        history = client.get(f"/v1/patients/{world.patient.address}/access-log").json()
    assert [e["sequence"] for e in history] == [1, 2, 3, 4]
    assert [e["requester"] for e in history] == [world.b.address, world.a.address, world.c.address, world.c.address]
    assert [e["break_glass"] for e in history] == [False, False, True, True]
    assert all(e["anchoring"] == "anchored" and e["clinician"] == "dr-wang-7f3a" for e in history)

    with world.node.member_client(world.ids.auditor.account) as auditor:
        export = auditor.get("/v1/access-log/export")
    assert export.status_code == 200
    lines = [json.loads(line) for line in export.text.splitlines()]
    events = world.backend.w3.eth.get_logs({"address": world.manifest.address("AccessTrail"), "fromBlock": 0})
    trail = world.chain_as(world.stranger).trail.contract.events.AccessRecorded()
    anchored = {e["args"]["sequence"]: e["args"]["entryHash"].hex() for e in (trail.process_log(x) for x in events)}
    for line in lines:
        document = {k: v for k, v in line.items() if k != "entry_hash"}
        recomputed = hashlib.sha256(json.dumps(document, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        assert recomputed == line["entry_hash"] == anchored[line["sequence"]]


def test_batched_anchoring_commits_the_merkle_root_of_the_whole_log(world: World, tmp_path) -> None:
    from medledger_crypto import merkle

    world.node.node.settings.outbox.batch_size = 3
    record_id = upload(world).json()["id"]
    for _ in range(2):  # two batches: the second root covers the whole log 1..6, not only its own entries
        for _ in range(3):
            assert fetch(world, world.a, record_id).status_code == 200
        world.node.drain()
    assert world.chain_as(world.stranger).trail.last_sequence(world.a.address) == 6
    with world.node.member_client(world.a.account) as client:
        hashes = [e["entry_hash"] for e in client.get("/v1/access-log").json()]
    leaves = [merkle.leaf_hash(bytes.fromhex(h)) for h in hashes]
    events = world.backend.w3.eth.get_logs({"address": world.manifest.address("AccessTrail"), "fromBlock": 0})
    batch = world.chain_as(world.stranger).trail.contract.events.AccessBatchAnchored()
    first, second = [batch.process_log(e)["args"] for e in events]
    assert (first["fromSequence"], first["toSequence"], second["fromSequence"], second["toSequence"]) == (1, 3, 4, 6)
    assert first["root"] == merkle.root(leaves[:3])
    assert second["root"] == merkle.root(leaves)


def test_members_see_only_their_own_log(world: World) -> None:
    with world.node.member_client(world.b.account) as client:
        assert client.get("/v1/access-log").status_code == 403
        assert client.get(f"/v1/patients/{world.patient.address}/access-log").status_code == 403
        assert client.get("/v1/access-log/export").status_code == 403
