"""The nonces of signed requests already seen: a replay is refused, written in group commits.

Why group commits: every signed request remembers its nonce before anything else happens, so
this is one write transaction per request. On SQLite those share the database's single write
lock with the access log and the outbox, and under load that lock was the node's ceiling (see
``core.group_commit``). Nonces that arrive together now go in one multi-row INSERT ... ON
CONFLICT DO NOTHING RETURNING: the keys it returns were fresh, any other was seen before. The
order of checks is unchanged: a request's nonce is committed before the request does anything.
"""

from __future__ import annotations

import threading
from datetime import datetime

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from ledger_api.auth.models import SeenRequestNonce
from ledger_api.core.db import WriteTurns, transaction
from ledger_api.core.group_commit import GroupCommit

_TABLE = SeenRequestNonce.__table__  # type: ignore[attr-defined]
_DIALECTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


class NonceBook:
    """Remembers ``signer:nonce`` keys until they expire; ``remember`` says whether a key is new."""

    def __init__(self, engine: Engine, write_turns: WriteTurns) -> None:
        self.engine, self.write_turns = engine, write_turns
        insert = _DIALECTS[engine.dialect.name]
        self._insert = insert(_TABLE).on_conflict_do_nothing(index_elements=[_TABLE.c.key]).returning(_TABLE.c.key)
        self.commits: GroupCommit[tuple[str, datetime], bool] = GroupCommit(threading.Lock(), self._remember)

    def remember(self, key: str, expires_at: datetime) -> bool:
        """True if ``key`` was not seen before (it is committed now); False for a replay."""
        return self.commits.submit((key, expires_at))

    def _remember(self, batch: list[tuple[str, datetime]]) -> list[bool]:
        with self.write_turns.turn(), transaction(self.engine) as connection:
            fresh = set(connection.execute(self._insert, [{"key": k, "expires_at": e} for k, e in batch]).scalars())
        results = []
        for key, _ in batch:  # the same key twice in one batch: only its first use is fresh
            results.append(key in fresh)
            fresh.discard(key)
        return results
