"""``medledger serve``: one member node (FastAPI + uvicorn) from the settings (env / config file)."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from ledger_api.cli.output import reported_errors
from ledger_api.core.config import Settings
from ledger_api.core.observability import configure_logging


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8601,
    log_level: Annotated[str, typer.Option(help="Log level.")] = "INFO",
) -> None:
    """Serves this member's node. Settings: MEDLEDGER_* variables or the JSON file in MEDLEDGER_CONFIG."""
    from ledger_api.main import create_app
    from ledger_api.node import build_node

    configure_logging(log_level.upper())
    with reported_errors():
        node = build_node(Settings())
    uvicorn.run(create_app(node), host=host, port=port, log_level=log_level.lower(), access_log=False)
