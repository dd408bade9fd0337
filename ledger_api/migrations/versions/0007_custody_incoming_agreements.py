"""incoming custody only under an agreement the successor's own system made"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

from ledger_api.migrations.helpers import create_indexes, drop_table

revision, down_revision = "0007", "0006"


def upgrade() -> None:
    op.create_table(
        "custody_incoming_agreements",
        sa.Column("predecessor", sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
        sa.Column("max_records", sa.Integer(), nullable=False),
        sa.Column("max_bytes", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("records_received", sa.Integer(), nullable=False),
        sa.Column("bytes_received", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("withdrawn_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    create_indexes("custody_incoming_agreements", "predecessor")


def downgrade() -> None:
    drop_table("custody_incoming_agreements", "predecessor")
