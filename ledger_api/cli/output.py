"""Shared CLI output: one console, one way to report errors."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ledger_api.errors import LedgerError

# soft_wrap: messages carrying ids and addresses stay on one line (scripts grep them); tables still fit.
console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)
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


def print_listing(
    rows: list[dict[str, Any]],
    *,
    as_json: bool,
    title: str,
    columns: Sequence[str],
    row: Callable[[dict[str, Any]], Sequence[str]],
    whole: Sequence[str] = (),
) -> None:
    """Every listing prints the same way: ``--json`` for scripts, a table for people.

    Nothing is cut off with an ellipsis: the ``whole`` columns (ids people copy: a consent id has up to 78
    digits) keep their full width on one line, and the other columns wrap to make room."""
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    cells = [tuple(row(item)) for item in rows]
    table = Table(title=title)
    for index, column in enumerate(columns):
        if column in whole:
            width = max([len(column), *(len(c[index]) for c in cells)])
            table.add_column(column, no_wrap=True, min_width=width, overflow="ignore")
        else:
            table.add_column(column, overflow="fold")
    for values in cells:
        table.add_row(*values)
    console.print(table)
