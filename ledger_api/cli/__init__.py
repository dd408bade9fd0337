"""The ``medledger`` command line (typer + rich).

Errors print as one readable line with the problem's code, never a traceback (see ``output``).
"""

from __future__ import annotations

import typer

from ledger_api.cli import audit, chain, consortium, patient, record
from ledger_api.cli.serve import serve

app = typer.Typer(name="medledger", help="MedLedger: patient-controlled record sharing for a hospital consortium.",
                  no_args_is_help=True, pretty_exceptions_enable=False)  # fmt: skip
app.add_typer(chain.app, name="chain")
app.add_typer(consortium.app, name="consortium")
app.add_typer(patient.app, name="patient")
app.add_typer(record.app, name="record")
app.add_typer(audit.app, name="audit")
app.command()(serve)
app.command()(record.emergency)
