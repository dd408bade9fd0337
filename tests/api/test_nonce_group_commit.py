"""Signed requests' nonces that arrive together are remembered in one transaction (group commit);
a replay is refused whether its first use was committed earlier or sits in the same batch."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from ledger_api.auth.models import SeenRequestNonce
from ledger_api.auth.nonces import NonceBook, nonce_book
from ledger_api.core.db import WriteTurns, make_engine, session_scope
from ledger_api.errors import DatabaseUnavailable
from tests.api.conftest import World

SIGNER = "0x" + "22" * 20


def _wait_queued(book: NonceBook, count: int) -> None:
    deadline = time.monotonic() + 10
    while book.commits.queued < count:
        assert time.monotonic() < deadline, "the requests did not queue their nonces"
        time.sleep(0.005)


def test_nonces_queued_behind_a_write_are_remembered_together_and_a_replay_is_refused(world: World) -> None:
    book = nonce_book(world.node.node)
    expires = datetime.now(UTC) + timedelta(minutes=5)
    assert book.remember(f"{SIGNER}:earlier", expires) is True
    keys = ["a", "b", "earlier", "a", "c"]  # "earlier" was committed before; "a" comes twice in the batch
    with ThreadPoolExecutor(max_workers=len(keys)) as pool:
        with book.commits.lock:  # a write under way: the next requests queue behind it
            futures = []
            for i, key in enumerate(keys):
                futures.append(pool.submit(book.remember, f"{SIGNER}:{key}", expires))
                _wait_queued(book, i + 1)  # queued in this order, so the first "a" is the first use
            assert not any(f.done() for f in futures)  # nothing answered before its commit
        answers = [f.result(timeout=30) for f in futures]

    assert answers == [True, True, False, False, True]
    with session_scope(book.engine) as session:
        stored = set(session.exec(select(SeenRequestNonce.key)).scalars())  # type: ignore[call-overload]
    assert {f"{SIGNER}:{k}" for k in ("earlier", "a", "b", "c")} <= stored
    assert book.remember(f"{SIGNER}:c", expires) is False  # and later too


def test_on_sqlite_nonces_live_in_a_file_of_their_own_shared_by_every_process(tmp_path: Path) -> None:
    """SQLite has one write lock per file: nonces beside the database do not queue behind its writes."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    engine = make_engine(url)
    first, second = (NonceBook.for_database(url, engine, WriteTurns(url)) for _ in range(2))  # two API processes
    assert (tmp_path / "ledger.db.nonces").exists() and first.engine is not engine
    expires = datetime.now(UTC) + timedelta(minutes=5)
    assert first.remember(f"{SIGNER}:1", expires) is True
    assert second.remember(f"{SIGNER}:1", expires) is False  # replayed to the other process: refused
    assert second.remember(f"{SIGNER}:2", datetime.now(UTC) - timedelta(seconds=1)) is True
    second.purge(datetime.now(UTC))  # the expired one is forgotten, the live one kept
    with session_scope(first.engine) as session:
        assert set(session.exec(select(SeenRequestNonce.key)).scalars()) == {f"{SIGNER}:1"}  # type: ignore[call-overload]


def test_on_postgresql_nonces_stay_in_the_node_database(world: World) -> None:
    node = world.node.node
    kind = node.engine.dialect.name
    assert (nonce_book(node).engine is node.engine) == (kind == "postgresql")


def test_a_failed_group_fails_every_request_in_it_and_remembers_nothing(world: World, tmp_path: Path) -> None:
    unreachable = make_engine(f"sqlite:///{tmp_path / 'missing' / 'gone'}")  # the directory is removed below
    (tmp_path / "missing").rmdir()
    book = NonceBook(unreachable, WriteTurns(f"sqlite:///{tmp_path / 'turns.db'}"))
    expires = datetime.now(UTC) + timedelta(minutes=5)
    with ThreadPoolExecutor(max_workers=3) as pool:
        with book.commits.lock:
            futures = [pool.submit(book.remember, f"{SIGNER}:{i}", expires) for i in range(3)]
            _wait_queued(book, 3)
        for future in futures:
            with pytest.raises(DatabaseUnavailable):
                future.result(timeout=30)
    assert book.commits.queued == 0
