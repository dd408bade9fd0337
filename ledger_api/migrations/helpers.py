"""What the migrations do again and again: index a table's columns, and drop a table with its indexes.

Index names follow SQLAlchemy's ``ix_<table>_<column>`` (what the models' ``index=True`` expects).
Batch mode, because SQLite alters a table by copying it.
"""

from __future__ import annotations

from alembic import op


def create_indexes(table: str, *columns: str) -> None:
    with op.batch_alter_table(table, schema=None) as batch_op:
        for column in columns:
            batch_op.create_index(batch_op.f(f"ix_{table}_{column}"), [column], unique=False)


def drop_indexes(table: str, *columns: str) -> None:
    with op.batch_alter_table(table, schema=None) as batch_op:
        for column in columns:
            batch_op.drop_index(batch_op.f(f"ix_{table}_{column}"))


def drop_table(table: str, *indexed: str) -> None:
    """Drops ``table`` after the indexes on its ``indexed`` columns."""
    if indexed:
        drop_indexes(table, *indexed)
    op.drop_table(table)
