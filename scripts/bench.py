#!/usr/bin/env python3
"""``make bench``: runs every benchmark group, prints a table, writes bench-results.json.

bench-results.json is a flat object {figure name: number}. ``--only gas`` runs some groups and
merges their figures into the existing file. Figures are measured in one run on this machine;
compare ratios, not absolute times, across machines.

A group that fails does not cost the others their figures: its traceback is printed, it is marked
``bench.failed.<group>: 1`` in the file, the next group runs, the file is written after every
group, and the command exits non-zero at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench-results.json"


def bench_gas() -> dict[str, float]:
    from ledger_api.chain.backends import AnvilBackend
    from ledger_api.chain.gas import measure_gas

    with AnvilBackend() as backend:
        return measure_gas(backend)


def bench_crypto() -> dict[str, float]:
    import bench_crypto

    return bench_crypto.run()


def bench_api() -> dict[str, float]:
    import bench_api

    return bench_api.run()


def bench_consortium() -> dict[str, float]:
    import bench_consortium

    return bench_consortium.run()


def bench_patient() -> dict[str, float]:
    import bench_patient

    return bench_patient.run()


def bench_workflows() -> dict[str, float]:
    import bench_workflows

    return bench_workflows.run()


def bench_audit() -> dict[str, float]:
    import bench_audit

    return bench_audit.run()


def bench_reliability() -> dict[str, float]:
    import bench_reliability

    return bench_reliability.run_reliability()


def bench_fuzz() -> dict[str, float]:
    import bench_reliability

    return bench_reliability.run_fuzz()


def bench_security() -> dict[str, float]:
    import bench_security

    return bench_security.run()


def bench_integrator() -> dict[str, float]:
    import bench_integrator

    return bench_integrator.run()


def bench_network() -> dict[str, float]:
    import bench_network

    return bench_network.run()


def bench_soak() -> dict[str, float]:
    import bench_reliability

    return bench_reliability.run_soak()


GROUPS: dict[str, Callable[[], dict[str, float]]] = {
    "gas": bench_gas,
    "crypto": bench_crypto,
    "api": bench_api,
    "consortium": bench_consortium,
    "patient": bench_patient,
    "workflows": bench_workflows,
    "audit": bench_audit,
    "reliability": bench_reliability,
    "fuzz": bench_fuzz,
    "security": bench_security,
    "integrator": bench_integrator,
    "network": bench_network,
    "soak": bench_soak,
}


def _goals() -> dict[str, tuple[str, float]]:
    import bench_api
    import bench_audit
    import bench_consortium
    import bench_crypto
    import bench_integrator
    import bench_network
    import bench_patient
    import bench_reliability
    import bench_security
    import bench_workflows

    from ledger_api.chain.gas import GAS_GOALS

    return {
        **{k: ("<=", v) for k, v in GAS_GOALS.items()},
        **bench_crypto.GOALS,
        **bench_api.GOALS,
        **bench_consortium.GOALS,
        **bench_audit.GOALS,
        **bench_reliability.GOALS,
        **bench_security.GOALS,
        **bench_integrator.GOALS,
        **bench_network.GOALS,
        **bench_patient.GOALS,
        **bench_workflows.GOALS,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", help="comma-separated groups: " + ",".join(GROUPS))
    args = parser.parse_args()
    groups = args.only.split(",") if args.only else list(GROUPS)
    unknown = set(groups) - set(GROUPS)
    if unknown:
        parser.error(f"unknown groups: {sorted(unknown)}")
    results = json.loads(RESULTS.read_text()) if (args.only and RESULTS.exists()) else {}
    failed = []
    for group in groups:
        results.pop(f"bench.failed.{group}", None)
        try:
            results.update(GROUPS[group]())
        except Exception:
            traceback.print_exc()
            print(f"bench group {group!r} FAILED; going on with the others", file=sys.stderr)
            failed.append(group)
            results[f"bench.failed.{group}"] = 1.0
        RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")

    goals = _goals()
    table = Table(title="MedLedger benchmarks")
    for column in ("figure", "value", "goal", "met"):
        table.add_column(column, justify="right" if column != "figure" else "left")
    missed = 0
    for name in sorted(results):
        value = results[name]
        goal = goals.get(name)
        met = ""
        if goal:
            op, bound = goal
            ok = value <= bound if op == "<=" else value >= bound
            missed += not ok
            met = "[green]yes[/green]" if ok else "[red]no[/red]"
        table.add_row(name, f"{value:,.6g}", f"{goal[0]} {goal[1]:,}" if goal else "", met)
    Console().print(table)
    print(f"wrote {RESULTS.relative_to(ROOT)} ({len(results)} figures, {missed} goals missed)")
    if failed:
        print(f"FAILED groups: {', '.join(failed)} (their figures are missing; see the tracebacks above)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
