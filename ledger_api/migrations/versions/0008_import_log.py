"""the recipient's import log (the matching side of a disclosure)"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

from ledger_api.migrations.helpers import create_indexes, drop_table

revision, down_revision = "0008", "0007"


def upgrade() -> None:
    op.create_table(
        "import_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("custodian", sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
        sa.Column("custodian_sequence", sa.BigInteger(), nullable=False),
        sa.Column("record_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("record_version", sa.Integer(), nullable=False),
        sa.Column("patient", sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
        sa.Column("clinician", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("purpose", sa.Integer(), nullable=False),
        sa.Column("basis", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("content_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("custodian", "custodian_sequence"),
    )
    create_indexes("import_log", "patient")


def downgrade() -> None:
    drop_table("import_log", "patient")
