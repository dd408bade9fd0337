"""retention and restriction: a record's kind, last encounter and retention end; its restriction at the
patient's request; legal orders to erase a record before its retention end (rows from before have no
retention end: the retention job never destroys them)"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision, down_revision = "0010", "0009"


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    with op.batch_alter_table("records") as batch:
        batch.add_column(sa.Column("record_kind", text(length=16), nullable=False, server_default="other"))
        batch.add_column(sa.Column("last_encounter", sa.Date(), nullable=True))
        batch.add_column(sa.Column("retention_until", sa.Date(), nullable=True))
        batch.add_column(sa.Column("restricted", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("restricted_since", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("restriction_issued_at", sa.BigInteger(), nullable=False, server_default="0"))
    op.create_index("ix_records_retention_until", "records", ["retention_until"])
    op.create_table(
        "erasure_orders",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("record_id", text(length=64), sa.ForeignKey("records.id"), nullable=False, index=True),
        sa.Column("reference", text(length=200), nullable=False),
        sa.Column("authority", text(length=200), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("filed_by", text(length=128), nullable=False),
        sa.Column("state", text(length=16), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("countersigned_by", text(length=128), nullable=True),
        sa.Column("countersigner_account", text(length=42), nullable=True),
        sa.Column("countersignature", text(length=132), nullable=True),
        sa.Column("approved_by", text(length=42), nullable=True),
        sa.Column("executed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("erasure_orders")
    op.drop_index("ix_records_retention_until", "records")
    with op.batch_alter_table("records") as batch:
        for column in (
            "restriction_issued_at",
            "restricted_since",
            "restricted",
            "retention_until",
            "last_encounter",
            "record_kind",
        ):
            batch.drop_column(column)
