"""Shared CLI output: one console, one way to report errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from ledger_api.errors import LedgerError

console = Console()
errors = Console(stderr=True)
T = TypeVar("T")


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turns domain errors and bad input into one line on stderr and a non-zero exit."""
    try:
        yield
    except LedgerError as exc:
        errors.print(f"[red]error[/red] {escape(f'[{exc.code}] {exc.detail}')}")
        raise typer.Exit(2 if exc.status < 500 else 3) from None
    except (ValueError, ValidationError, FileNotFoundError) as exc:
        errors.print(f"[red]error[/red] {escape(f'[invalid-input] {exc}')}")
        raise typer.Exit(2) from None


def run(fn: Callable[[], T]) -> T:
    with reported_errors():
        return fn()
