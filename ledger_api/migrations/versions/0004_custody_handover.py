"""custody handover"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

from ledger_api.migrations.helpers import drop_table

revision, down_revision = "0004", "0003"


def upgrade() -> None:
    op.create_table(
        "custody_handovers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("successor", sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("records_total", sa.Integer(), nullable=False),
        sa.Column("records_sent", sa.Integer(), nullable=False),
        sa.Column("records_transferred", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("finished_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("record_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sealed_by", sqlmodel.sql.sqltypes.AutoString(length=42), nullable=True))

    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("custody", sqlmodel.sql.sqltypes.AutoString(length=16), server_default="held", nullable=False)
        )
        batch_op.add_column(
            sa.Column("custody_counterpart", sqlmodel.sql.sqltypes.AutoString(length=42), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.drop_column("custody_counterpart")
        batch_op.drop_column("custody")

    with op.batch_alter_table("record_versions", schema=None) as batch_op:
        batch_op.drop_column("sealed_by")

    drop_table("custody_handovers")
