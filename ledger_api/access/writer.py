"""Group commit of access-log entries: concurrent releases share one transaction.

Why: every release writes its entry under the node's access lock (sequences are gap-free, so
they are allocated one writer at a time). Under load the thread holding that lock spent most of
its time waiting for the GIL between statements while every other release waited for the lock:
~3 ms held per entry for ~0.3 ms of work, which capped a node near 300 releases/s whatever else
was made faster. Here each release queues its entry and then takes the lock; whichever thread
holds it writes every entry queued so far in one transaction (one sequence allocation, one
multi-row insert per table, one commit) and the others, when their turn comes, find theirs
written. Nothing is acknowledged before its transaction commits, and a failed transaction fails
every release in it (none of them is released).
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from ledger_api.access.models import AccessEntry, AccessEntryBase
from ledger_api.access.service import record_accesses
from ledger_api.core.crash_drill import CrashDrill
from ledger_api.core.db import WriteTurns, session_scope


@dataclass
class _Pending:
    fields: AccessEntryBase
    entry: AccessEntry | None = None
    error: BaseException | None = None


class AccessLogWriter:
    """Writes release entries for one node, batching those that arrive while a write is under way."""

    def __init__(self, engine: Engine, member: str, access_lock: threading.Lock, crash_drill: CrashDrill,
                 write_turns: WriteTurns) -> None:  # fmt: skip
        self.engine, self.member, self.access_lock, self.crash_drill = engine, member, access_lock, crash_drill
        self.write_turns = write_turns
        self._queue: list[_Pending] = []
        self._queue_lock = threading.Lock()

    def write(self, fields: AccessEntryBase) -> AccessEntry:
        """The committed entry for ``fields`` (written by this thread or by one that held the lock first)."""
        pending = _Pending(fields)
        with self._queue_lock:
            self._queue.append(pending)
        with self.access_lock:
            if pending.entry is None and pending.error is None:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._write(batch)
        if pending.error is not None:
            raise copy.copy(pending.error)  # each release raises its own copy; the batch shared the cause
        assert pending.entry is not None
        return pending.entry

    def _write(self, batch: list[_Pending]) -> None:
        try:
            with self.write_turns.turn(), session_scope(self.engine) as session:
                entries = record_accesses(session, member=self.member, entries=[p.fields for p in batch])
                self.crash_drill.reached("fetch.before_commit", flush=session.flush)
        except BaseException as error:  # noqa: BLE001 - handed to every release of the batch, raised there
            for pending in batch:
                pending.error = error
            return
        for pending, entry in zip(batch, entries, strict=True):
            pending.entry = entry
