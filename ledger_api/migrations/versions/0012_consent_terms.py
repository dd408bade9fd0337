"""consent terms: a record's day of care (bound into its anchor's commitment, checked against consents
limited to days of care) and its hiding from every consent at the patient's request"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision, down_revision = "0012", "0011"


def upgrade() -> None:
    with op.batch_alter_table("records") as batch:
        batch.add_column(sa.Column("encounter_date", sa.Date(), nullable=True))
        batch.add_column(sa.Column("hidden", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("hidden_since", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("hiding_issued_at", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("records") as batch:
        for column in ("hiding_issued_at", "hidden_since", "hidden", "encounter_date"):
            batch.drop_column(column)
