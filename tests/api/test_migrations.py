"""The Alembic migrations build exactly the schema the models describe (a new table or column needs both)."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine
from sqlmodel import SQLModel

from ledger_api.core.db import migrate
from ledger_api.models import import_all_models


def test_the_migrated_schema_matches_the_models(tmp_path: Path) -> None:
    import_all_models()
    engine = create_engine(f"sqlite:///{tmp_path / 'schema.db'}")
    migrate(engine)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    engine.dispose()
    assert differences == []
