"""``medledger serve --workers N``: N API processes on one socket, and one process for the background
jobs (outbox sender, notification scanner), so that anchoring a Merkle batch never holds up the
requests of an API process. The parent supervises them: if any dies, the node stops, non-zero, for
its service manager to restart it whole."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.utils.crash import CrashLab
from tests.utils.nodes import database
from tests.utils.processes import alive, children_of, read_proc

pytestmark = pytest.mark.slow


def _children(pid: int, expected: int) -> dict[str, int]:
    """The node's own child processes of ``pid`` (not multiprocessing's resource tracker): name -> pid.

    Each child names itself where it starts, and the node is ready as soon as one API process serves:
    the others may still be starting, so this waits (10 s at most) until ``expected`` have named
    themselves, then looks once more."""
    deadline = time.monotonic() + 10
    while True:
        names = {child: read_proc(child, "comm").decode().strip() for child in children_of(pid)}
        named = {name: child for child, name in names.items() if name.startswith("medledger-")}
        if len(named) >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    time.sleep(0.5)  # and one more look, so that a process beyond those expected shows too
    names = {child: read_proc(child, "comm").decode().strip() for child in children_of(pid)}
    return {name: child for child, name in names.items() if name.startswith("medledger-")}


@contextmanager
def _node_of_two_api_processes(tmp_path: Path, expected: int = 3) -> Iterator[tuple[CrashLab, dict[str, int]]]:
    """Member A's node as ``medledger serve --workers 2`` (SQLite), with its named child processes."""
    with database("sqlite", tmp_path) as url:
        lab = CrashLab(tmp_path, url)
        try:
            lab.start(workers=2)
            assert lab.process is not None
            yield lab, _children(lab.process.pid, expected)
        finally:
            lab.close()


def test_the_api_processes_serve_and_the_jobs_process_anchors(tmp_path: Path) -> None:
    with _node_of_two_api_processes(tmp_path) as (lab, children):
        assert set(children) == {"medledger-api-0", "medledger-api-1", "medledger-jobs"}
        lab.prepare_reads(count=2)  # uploads answered by the API processes, anchored by the jobs process
        with lab.client("b") as client:
            sequences = [lab.read_once(client, lab.readable[i % 2]) for i in range(6)]
        assert sequences == [1, 2, 3, 4, 5, 6]
        lab.wait_drained()  # the access entries anchored too
        assert lab.tally.problems == []
        lab.reconcile()
        assert lab.tally.problems == []


def test_a_node_whose_jobs_are_switched_off_starts_no_jobs_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDLEDGER_RUN_OUTBOX_WORKER", "false")
    with _node_of_two_api_processes(tmp_path, expected=2) as (lab, children):
        assert set(children) == {"medledger-api-0", "medledger-api-1"}
        with lab.client("a") as client:
            assert lab.upload_once(client) is not None  # served, and left pending for a jobs process
        lab.wait_drained(timeout=3)
        assert lab.tally.problems and "not drained" in lab.tally.problems[-1]


def test_when_the_jobs_process_dies_the_whole_node_stops_non_zero(tmp_path: Path) -> None:
    with _node_of_two_api_processes(tmp_path) as (lab, children):
        assert lab.process is not None
        os.kill(children["medledger-jobs"], signal.SIGKILL)
        assert lab.process.wait(timeout=60) == 1  # not 0: a supervisor restarts it
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in children.values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in children.values() if alive(pid)]  # the API processes stopped too
