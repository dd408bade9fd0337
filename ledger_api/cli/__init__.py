"""The ``medledger`` command line (typer + rich).

Errors print as one readable line with the problem's code, never a traceback: every command
runs inside ``run_command``, which maps ``LedgerError`` (and caller mistakes) to exit codes.
"""

from __future__ import annotations

import typer

from ledger_api.cli import chain

app = typer.Typer(name="medledger", help="MedLedger: patient-controlled record sharing for a hospital consortium.",
                  no_args_is_help=True, pretty_exceptions_enable=False)  # fmt: skip
app.add_typer(chain.app, name="chain")
