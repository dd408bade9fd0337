"""Release entries written in group commits: concurrent releases share one transaction.

Why: every release writes its entry under the node's access lock (sequences are gap-free, so
they are allocated one writer at a time), and a lock holder waiting for the GIL between
statements held up every other release (~3 ms held per entry for ~0.3 ms of work). Written in
groups (``core.group_commit``), a batch takes one sequence allocation, one multi-row insert per
table and one commit; nothing is acknowledged before its commit.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy.engine import Engine

from ledger_api.access.models import AccessEntryBase
from ledger_api.access.service import insert_accesses
from ledger_api.core.crash_drill import CrashDrill
from ledger_api.core.db import WriteTurns, transaction
from ledger_api.core.group_commit import GroupCommit
from ledger_api.node import Node


class AccessLogWriter:
    """Writes release entries for one node, batching those that arrive while a write is under way."""

    def __init__(
        self, engine: Engine, member: str, access_lock: threading.Lock, crash_drill: CrashDrill, write_turns: WriteTurns
    ) -> None:
        self.engine, self.member, self.crash_drill, self.write_turns = engine, member, crash_drill, write_turns
        self.commits: GroupCommit[dict[str, Any], dict[str, Any]] = GroupCommit(access_lock, self._write)

    def write(self, fields: AccessEntryBase) -> int:
        """The sequence of the committed entry for ``fields`` (written by this thread or by one that
        held the lock first).

        The fields are dumped before the write turn: the turn holds the database's single write
        lock (SQLite) and should cover the statements only. No entry object is built at all: a
        release needs only the sequence, and building one cost more than the insert's statement.
        """
        return int(self.commits.submit(fields.model_dump())["sequence"])

    def _write(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        with self.write_turns.turn(), transaction(self.engine) as connection:
            rows = insert_accesses(connection, member=self.member, entries=batch)
            self.crash_drill.reached("fetch.before_commit")  # plain statements: already sent, uncommitted
        return rows


def access_log(node: Node) -> AccessLogWriter:
    """The node's access-log writer (group commits under ``node.access_lock``), made on first use."""
    return node.part(
        AccessLogWriter, lambda n: AccessLogWriter(n.engine, n.address, n.access_lock, n.crash_drill, n.write_turns)
    )
