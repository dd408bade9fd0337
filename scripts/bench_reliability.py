"""Reliability, fuzzing and soak figures: the harnesses the tests use (``tests/utils/crash.py``,
``fuzz.py``, ``soak.py``), run with bigger budgets.

- ``reliability``: SIGKILL of member A's node at each of the 8 kill points, ``MEDLEDGER_CRASH_RUNS``
  rounds (default 13, so 104 kills; each kills on the 1st, 2nd or 3rd pass), PostgreSQL; lost and
  duplicated chain entries after every restart.
- ``fuzz``: schemathesis, 50 examples per operation plus 100 linked scenarios of up to 10 steps; and
  300 hostile bodies (depth, size, encoding, duplicate keys) on every JSON route.
- ``soak``: ``MEDLEDGER_SOAK_S`` seconds (default 120) of mixed traffic on a 3-member consortium
  with 6 clients, then ``medledger audit verify`` of everything it produced.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

GOALS = {
    "reliability.lost_entries": ("<=", 0),
    "reliability.duplicate_entries": ("<=", 0),
    "reliability.problems": ("<=", 0),
    "reliability.kill_points_x_runs": (">=", 100),
    "fuzz.server_errors": ("<=", 0),
    "fuzz.schema_violations": ("<=", 0),
    "fuzz.hostile_server_errors": ("<=", 0),
    "fuzz.hostile_findings": ("<=", 0),
    "soak.error_rate": ("<=", 0.0),
    "soak.audit_passed": (">=", 1),
}


def run_reliability() -> dict[str, float]:
    from ledger_api.core.crash_drill import POINTS
    from tests.utils.crash import run_drills
    from tests.utils.nodes import database

    runs = int(os.environ.get("MEDLEDGER_CRASH_RUNS", "13"))
    with tempfile.TemporaryDirectory() as work, database("postgresql", Path(work)) as url:
        tally = run_drills(Path(work), url, runs=runs)
    for problem in tally.problems:
        print("  reliability problem:", problem)
    return {
        "reliability.kill_points_x_runs": float(len(POINTS) * runs),
        "reliability.runs": float(tally.runs),
        "reliability.lost_entries": float(tally.lost),
        "reliability.duplicate_entries": float(tally.duplicates),
        "reliability.problems": float(len(tally.problems)),
        "reliability.acknowledged_writes": float(tally.acknowledged_uploads + tally.acknowledged_reads),
    }


def run_fuzz() -> dict[str, float]:
    import logging

    import structlog
    from eth_account import Account

    from ledger_api.chain.backends import EthTesterBackend
    from tests.utils.fuzz import fuzz_hostile, fuzz_stateful, fuzz_stateless
    from tests.utils.nodes import Identities, deploy, start_node

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))  # thousands of requests
    ids = Identities()
    with tempfile.TemporaryDirectory() as work, EthTesterBackend() as backend:
        manifest = deploy(backend, ids, Account.create())
        with start_node(backend, manifest, ids.members["a"], Path(work), f"sqlite:///{work}/node.db") as node:
            stateless = fuzz_stateless(node, ids.members["a"].account, examples=50)
            stateful = fuzz_stateful(node, ids.members["a"].account, scenarios=100, steps=10)
            hostile = fuzz_hostile(node, ids.members["a"].account, examples=300)
    for failure in (stateless.failures + stateful.failures + hostile.failures)[:20]:
        print("  fuzz finding:", failure[:300])
    for note in stateful.notes:
        print("  fuzz note:", note)
    return {
        "fuzz.schemathesis_cases": float(stateless.cases + stateful.cases),
        "fuzz.stateful_cases": float(stateful.cases),
        "fuzz.followed_links": float(stateful.followed_links),
        "fuzz.stateful_rounds_abandoned": float(stateful.rounds_abandoned),
        "fuzz.hostile_cases": float(hostile.cases),
        "fuzz.hostile_server_errors": float(hostile.server_errors),
        "fuzz.hostile_findings": float(len(hostile.failures)),
        "fuzz.server_errors": float(stateless.server_errors + stateful.server_errors),
        "fuzz.schema_violations": float(
            len(stateless.failures) + len(stateful.failures) - stateless.server_errors - stateful.server_errors
        ),
    }


def run_soak() -> dict[str, float]:
    from tests.utils.soak import run_soak as soak

    duration = float(os.environ.get("MEDLEDGER_SOAK_S", "120"))
    with tempfile.TemporaryDirectory() as work:
        result = soak(Path(work), duration_s=duration, workers=6)
    if result.unexpected:
        print("  soak unexpected answers:", result.unexpected)
    if not result.audit_passed:
        print(result.audit_output)
    return {
        "soak.duration_s": duration,
        "soak.requests": float(result.requests),
        "soak.requests_per_s": round(result.requests / duration, 1),
        "soak.error_rate": result.error_rate,
        "soak.p50_ms": round(result.percentile_ms(0.50), 1),
        "soak.p99_ms": round(result.percentile_ms(0.99), 1),
        "soak.audit_passed": 1.0 if result.audit_passed else 0.0,
    }
