"""consortium-view proofs ended by sign-out at the member that presented them"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

from ledger_api.migrations.helpers import create_indexes, drop_table

revision, down_revision = "0006", "0005"


def upgrade() -> None:
    op.create_table(
        "ended_patient_proofs",
        sa.Column("digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("digest"),
    )
    create_indexes("ended_patient_proofs", "expires_at")


def downgrade() -> None:
    drop_table("ended_patient_proofs", "expires_at")
