"""The ``medledger`` command line (typer + rich).

Errors print as one readable line with the problem's code, never a traceback (see ``output``).

Sub-commands load lazily: ``medledger --help`` lists them from the table below without importing any,
and each command module imports the chain, crypto and web stacks inside its commands, not at the top,
so help and simple commands start in well under half a second (figure ``cli.startup_ms``).
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
from typer.core import TyperGroup

#: name -> (module, attribute: a Typer app or a command function, one-line help)
COMMANDS = {
    "audit": ("ledger_api.cli.audit", "app", "Auditors: verify the access trail, review break-glass, export FHIR."),
    "chain": ("ledger_api.cli.chain", "app", "Deploy contracts and run the local development chain."),
    "consent": ("ledger_api.cli.consent", "app", "Member hospitals: ask patients for consent, follow the answers."),
    "consortium": ("ledger_api.cli.consortium", "app", "Run the local consortium."),
    "emergency": ("ledger_api.cli.record", "emergency", "Declare break-glass access to a patient's records."),
    "patient": (
        "ledger_api.cli.patient",
        "app",
        "Patients: create a key, grant and revoke consent, see who read what.",
    ),
    "record": ("ledger_api.cli.record", "app", "Member hospitals: put, get and list records."),
    "serve": ("ledger_api.cli.serve", "serve", "Run one member node (API, portal and background jobs)."),
}
EPILOG = (
    "Passphrases come from the environment: MEDLEDGER_KEYSTORE_PASSPHRASE (member keystores), "
    "MEDLEDGER_PATIENT_PASSPHRASE (patient keys), MEDLEDGER_DEV_PASSPHRASE (the local consortium's "
    "development keys; default 'medledger-local-development-only'). Node URL: MEDLEDGER_NODE_URL."
)


class LazyCommands(TyperGroup):
    """The top-level group: a sub-command's module is imported only when it runs (or shows its own help)."""

    def list_commands(self, ctx: Any) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: Any, name: str) -> Any:
        if name not in COMMANDS:
            return None
        module, attribute, _ = COMMANDS[name]
        target = getattr(importlib.import_module(module), attribute)
        if not isinstance(target, typer.Typer):
            single = typer.Typer(pretty_exceptions_enable=False)
            single.command(name=name)(target)
            target = single
        command = typer.main.get_command(target)
        command.name = name
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        # the plain layout (typer's rich one would import every command to read its help line)
        super(TyperGroup, self).format_help(ctx, formatter)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, text) for name, (_, _, text) in sorted(COMMANDS.items())])


app = typer.Typer(
    name="medledger",
    cls=LazyCommands,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="MedLedger: patient-controlled record sharing for a hospital consortium.",
    epilog=EPILOG,
)


@app.callback()
def main() -> None:
    """MedLedger: patient-controlled record sharing for a hospital consortium."""
