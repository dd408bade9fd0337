"""access entries record the chain block their authorisation was read at

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 03:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("access_log") as batch:
        batch.add_column(sa.Column("chain_block", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("access_log") as batch:
        batch.drop_column("chain_block")
