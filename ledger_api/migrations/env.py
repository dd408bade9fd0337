"""Alembic environment: runs migrations on the connection the node hands over (see core.db.migrate)."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from ledger_api.models import import_all_models

import_all_models()
target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    connection = context.config.attributes["connection"]
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
