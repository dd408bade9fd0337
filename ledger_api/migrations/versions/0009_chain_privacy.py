"""commitments instead of clear data on chain: a record's subject salt, an access entry's nonce and
category, a break-glass declaration's salt (rows from before have empty salts: they were anchored in clear)"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision, down_revision = "0009", "0008"


def upgrade() -> None:
    with op.batch_alter_table("records") as batch:
        batch.add_column(
            sa.Column("subject_salt", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False, server_default="")
        )
    with op.batch_alter_table("access_log") as batch:
        batch.add_column(
            sa.Column("nonce", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("category", sa.Integer(), nullable=True))
    with op.batch_alter_table("break_glass") as batch:
        batch.add_column(
            sa.Column("statement_salt", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("break_glass") as batch:
        batch.drop_column("statement_salt")
    with op.batch_alter_table("access_log") as batch:
        batch.drop_column("category")
        batch.drop_column("nonce")
    with op.batch_alter_table("records") as batch:
        batch.drop_column("subject_salt")
