"""Releases that arrive together share one transaction for their access entries (group commit):
each still gets its own gap-free sequence, its own fields and hash, and nothing is acknowledged
before it is committed."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ledger_api.access.models import AccessEntryBase
from ledger_api.access.writer import AccessLogWriter, access_log
from ledger_api.chain.backends import EthTesterBackend
from ledger_api.core import headers as header_names
from ledger_api.core.crash_drill import CrashDrill
from ledger_api.core.db import WriteTurns, make_engine
from ledger_api.core.group_commit import GroupCommit
from ledger_api.errors import DatabaseUnavailable
from ledger_api.vocabulary import Category, bitset
from tests.api.conftest import World
from tests.utils.records import fetch, grant, upload


def _fields(record_id: str, clinician: str) -> AccessEntryBase:
    return AccessEntryBase(
        record_id=record_id,
        record_version=1,
        patient="0x" + "11" * 20,
        requester="0x" + "22" * 20,
        clinician=clinician,
        purpose=0,
        basis="custodian",
        authorization="",
        action="read",
        chain_block=7,
    )


def _queued(commits: GroupCommit, count: int) -> None:
    deadline = time.monotonic() + 10
    while commits.queued < count:  # the test waits until every caller has queued its item
        assert time.monotonic() < deadline, "callers did not queue their items"
        time.sleep(0.005)


def test_releases_queued_behind_a_write_are_committed_together_each_with_its_own_entry(world: World) -> None:
    node = world.node.node
    writer = access_log(node)
    with ThreadPoolExecutor(max_workers=6) as pool:
        with node.access_lock:  # a write under way: the next releases queue behind it
            futures = [pool.submit(writer.write, _fields(f"{i:064x}", f"clinician-{i}")) for i in range(6)]
            _queued(writer.commits, 6)
            assert not any(f.done() for f in futures)  # nothing acknowledged before its commit
        sequences = [f.result(timeout=30) for f in futures]

    assert sorted(sequences) == [1, 2, 3, 4, 5, 6]
    with world.node.member_client(world.ids.auditor.account) as auditor:
        lines = [json.loads(line) for line in auditor.get("/v1/access-log/export").text.splitlines()]
    assert [line["sequence"] for line in lines] == [1, 2, 3, 4, 5, 6]
    by_sequence = {line["sequence"]: line for line in lines}
    for i, sequence in enumerate(sequences):  # each caller got the sequence of its own entry
        assert by_sequence[sequence]["clinician"] == f"clinician-{i}"
        assert by_sequence[sequence]["record_id"] == f"{i:064x}"
    assert len({line["created_at"] for line in lines}) == 1  # one transaction wrote them all
    for line in lines:
        document = {k: v for k, v in line.items() if k != "entry_hash"}
        recomputed = hashlib.sha256(json.dumps(document, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        assert recomputed == line["entry_hash"]


def test_a_failed_group_fails_every_release_in_it(world: World, tmp_path: Path) -> None:
    node = world.node.node
    unreachable = make_engine(f"sqlite:///{tmp_path / 'missing' / 'gone'}")  # the directory is removed below
    (tmp_path / "missing").rmdir()
    turns = WriteTurns(f"sqlite:///{tmp_path / 'turns.db'}")
    writer = AccessLogWriter(unreachable, node.address, threading.Lock(), CrashDrill(), turns)
    with ThreadPoolExecutor(max_workers=3) as pool:
        with writer.commits.lock:
            futures = [pool.submit(writer.write, _fields(f"{i:064x}", "dr-li")) for i in range(3)]
            _queued(writer.commits, 3)
        for future in futures:
            with pytest.raises(DatabaseUnavailable):
                future.result(timeout=30)
    assert writer.commits.queued == 0  # nothing left behind to be written later


def test_concurrent_fetches_get_distinct_gap_free_sequences_matching_what_they_read(world: World) -> None:
    if isinstance(world.backend, EthTesterBackend):
        pytest.skip("the in-process EVM is not thread-safe; this runs against the anvil node")
    records = [upload(world).json()["id"] for _ in range(4)]
    grant(world, world.b.address, categories=bitset([Category.LABS]))
    with ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(pool.map(lambda i: fetch(world, world.b, records[i % 4]), range(24)))
    assert all(r.status_code == 200 for r in responses)
    read = {int(r.headers[header_names.ACCESS_SEQUENCE]): r.headers[header_names.RECORD_ID] for r in responses}
    assert sorted(read) == list(range(1, 25))
    with world.node.patient_client(world.patient) as client:
        history = client.get(f"/v1/patients/{world.patient.address}/access-log").json()
    assert {e["sequence"]: e["record_id"] for e in history} == read
