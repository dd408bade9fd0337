"""succession: the key a patient session signed in with (when another account's), a minor's date of birth
attested at this member (the chain holds only when the child may claim the account), and the in-person
identity checks behind this member's approvals of key recoveries"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision, down_revision = "0013", "0012"


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    moment = sqlmodel.sql.sqltypes.UTCDateTime
    with op.batch_alter_table("patient_sessions") as batch:
        batch.add_column(sa.Column("signing_key", text(length=42), nullable=True))
    op.create_table(
        "minor_enrolments",
        sa.Column("account", text(length=42), primary_key=True),
        sa.Column("guardian", text(length=42), nullable=False),
        sa.Column("date_of_birth", sa.Date(), nullable=False),
        sa.Column("minor_until", sa.Date(), nullable=False),
        sa.Column("identity_checked_by", text(length=64), nullable=False),
        sa.Column("enrolled_at", moment(), nullable=False),
        sa.Column("tx_hash", text(length=66), nullable=False),
    )
    op.create_table(
        "recovery_approvals",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("account", text(length=42), nullable=False, index=True),
        sa.Column("new_key", text(length=42), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("identity_checked_by", text(length=64), nullable=False),
        sa.Column("approved_at", moment(), nullable=False),
        sa.Column("tx_hash", text(length=66), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("recovery_approvals")
    op.drop_table("minor_enrolments")
    with op.batch_alter_table("patient_sessions") as batch:
        batch.drop_column("signing_key")
