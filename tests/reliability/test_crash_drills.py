"""A member node killed (SIGKILL) at every step of the upload and fetch paths loses nothing and
anchors nothing twice: after each restart its database and the chain reconcile exactly.

Kill points (``ledger_api.core.crash_drill.POINTS``): before the commit, after the commit and
before the chain hears of it, after signing and before broadcasting, after broadcasting and
before the receipt - on the upload path (record anchors) and on the fetch path (access entries).
Each runs under load and kills on the 1st, 2nd or 3rd pass. SQLite takes every point; PostgreSQL the
four where the database's own commit is what is cut (the outbox's points are the same code over either),
and ``make bench`` runs every point on PostgreSQL 13 times.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger_api.core.crash_drill import POINTS
from tests.utils.crash import run_drills
from tests.utils.nodes import database

pytestmark = pytest.mark.slow


COMMIT_POINTS = tuple(point for point in POINTS if point.endswith("commit"))


@pytest.mark.parametrize(
    ("db_kind", "points"), [("sqlite", POINTS), ("postgresql", COMMIT_POINTS)], ids=["sqlite", "postgresql"]
)
def test_every_kill_point_loses_nothing_and_duplicates_nothing(
    tmp_path: Path, db_kind: str, points: tuple[str, ...]
) -> None:
    with database(db_kind, tmp_path) as url:  # PostgreSQL kills on the 2nd pass: its one run acknowledges writes first
        tally = run_drills(tmp_path, url, runs=1, points=points, first_pass=1 if points == POINTS else 2)
    assert tally.runs == len(points)
    assert tally.acknowledged_uploads > 0 and tally.acknowledged_reads > 0
    assert (tally.lost, tally.duplicates, tally.problems) == (0, 0, [])
