"""erasure approval signature: the auditor's own EIP-712 signature over a legal erasure order, kept with the
order beside the records officer's (orders approved before it have none)"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision, down_revision = "0014", "0013"


def upgrade() -> None:
    with op.batch_alter_table("erasure_orders") as batch:
        batch.add_column(sa.Column("approval_signature", sqlmodel.sql.sqltypes.AutoString(length=132), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("erasure_orders") as batch:
        batch.drop_column("approval_signature")
