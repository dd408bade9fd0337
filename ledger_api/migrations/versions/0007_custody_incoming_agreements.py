"""incoming custody only under an agreement the successor's own system made"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0007"
down_revision = "0006"


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
    with op.batch_alter_table("custody_incoming_agreements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_custody_incoming_agreements_predecessor"), ["predecessor"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("custody_incoming_agreements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_custody_incoming_agreements_predecessor"))
    op.drop_table("custody_incoming_agreements")
