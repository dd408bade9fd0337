"""consortium-view proofs ended by sign-out at the member that presented them"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.create_table(
        "ended_patient_proofs",
        sa.Column("digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("digest"),
    )
    with op.batch_alter_table("ended_patient_proofs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ended_patient_proofs_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ended_patient_proofs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ended_patient_proofs_expires_at"))
    op.drop_table("ended_patient_proofs")
