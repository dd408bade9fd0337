"""Write transactions on a SQLite file take turns across threads and processes (instead of sleeping
in SQLite's busy handler), so the next writer starts as soon as the last one is done."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from ledger_api.core.db import WriteTurns

HOLDER = """
import sys, time
from ledger_api.core.db import WriteTurns
with WriteTurns(sys.argv[1]).turn():
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_a_writer_in_another_process_holds_the_turn_until_it_is_done(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'node.db'}"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, url, "0.6"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        started = time.monotonic()
        with WriteTurns(url).turn():
            waited = time.monotonic() - started
        assert holder.wait(timeout=10) == 0
    finally:
        holder.kill()
    assert 0.3 < waited < 5  # it waited for the other process, and got the turn right after


def test_threads_of_one_process_take_turns_one_at_a_time(tmp_path: Path) -> None:
    turns = WriteTurns(f"sqlite:///{tmp_path / 'node.db'}")
    inside, most = 0, 0
    guard = threading.Lock()

    def write() -> None:
        nonlocal inside, most
        with turns.turn():
            with guard:
                inside += 1
                most = max(most, inside)
            time.sleep(0.01)
            with guard:
                inside -= 1

    threads = [threading.Thread(target=write) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert most == 1


def test_postgresql_and_in_memory_databases_need_no_turns(tmp_path: Path) -> None:
    for url in ("postgresql://postgres@127.0.0.1:5432/test", "sqlite:///:memory:"):
        with WriteTurns(url).turn(), WriteTurns(url).turn():  # nested: nothing is taken, nothing waits
            pass
    assert not list(tmp_path.iterdir())
