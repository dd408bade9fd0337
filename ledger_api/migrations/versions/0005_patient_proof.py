"""patient sessions keep their signed sign-in message (the consortium-view proof)"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision, down_revision = "0005", "0004"


def upgrade() -> None:
    with op.batch_alter_table("patient_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sign_in_message", sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=True))
        batch_op.add_column(sa.Column("sign_in_signature", sqlmodel.sql.sqltypes.AutoString(length=132), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("patient_sessions", schema=None) as batch_op:
        batch_op.drop_column("sign_in_signature")
        batch_op.drop_column("sign_in_message")
