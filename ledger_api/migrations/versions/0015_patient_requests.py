"""patient requests: each patient-signed change of a record's restriction or hiding, kept by the custodian
as the evidence behind its trail entry and exported to auditors (changes before it have none kept)"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

from ledger_api.migrations.helpers import create_indexes, drop_table

revision, down_revision = "0015", "0014"


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    op.create_table(
        "patient_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_id", text(length=64), nullable=False),
        sa.Column("kind", text(length=32), nullable=False),
        sa.Column("patient", text(length=42), nullable=False),
        sa.Column("value", sa.Boolean(), nullable=False),
        sa.Column("issued_at", sa.BigInteger(), nullable=False),
        sa.Column("deadline", sa.BigInteger(), nullable=False),
        sa.Column("signature", text(length=130), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["record_id"], ["records.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    create_indexes("patient_requests", "record_id")


def downgrade() -> None:
    drop_table("patient_requests", "record_id")
