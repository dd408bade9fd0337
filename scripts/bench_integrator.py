"""Integrator figures: the OpenAPI document's validator errors, and how fast the command line starts.

- ``api.openapi_lint_errors``: errors reported by openapi-spec-validator, @apidevtools/swagger-parser and
  @redocly/cli lint (recommended rules) together, on the document a node serves (goal 0).
- ``cli.startup_ms``: the slowest of the median wall times (7 runs each) of ``medledger --help`` and simple
  commands: a group's help, and ``consortium status`` with nothing running (goal <= 500). Each command is
  a fresh process, as a person typing it gets.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GOALS = {"api.openapi_lint_errors": ("<=", 0), "cli.startup_ms": ("<=", 500)}
RUNS = 7


def _commands(empty: str) -> dict[str, list[str]]:
    return {
        "help": ["--help"],
        "record_help": ["record", "--help"],
        "patient_help": ["patient", "--help"],
        "audit_help": ["audit", "--help"],
        "status_nothing_running": ["consortium", "status", "--data-dir", empty],
    }


def _median_ms(arguments: list[str]) -> float:
    medledger = Path(sys.executable).parent / "medledger"
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run([str(medledger), *arguments], capture_output=True, timeout=60)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def run() -> dict[str, float]:
    from ledger_api.core.config import Settings
    from ledger_api.main import api_document
    from tests.utils.openapi_lint import lint

    results = lint(api_document(Settings()))
    figures = {
        f"api.openapi_lint_errors.{r.tool.split()[0].strip('@').replace('/', '_')}": float(r.errors) for r in results
    }
    figures["api.openapi_lint_errors"] = float(sum(r.errors for r in results))
    with tempfile.TemporaryDirectory() as empty:
        startup = {name: _median_ms(arguments) for name, arguments in _commands(empty).items()}
    figures.update({f"cli.startup_ms.{name}": round(ms, 1) for name, ms in startup.items()})
    figures["cli.startup_ms"] = round(max(startup.values()), 1)
    return figures


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name}: {value}")
