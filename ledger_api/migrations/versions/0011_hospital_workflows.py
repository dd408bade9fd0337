"""hospital workflows: a patient's link to this hospital's number (MRN) and the short codes shown at its
desk; the consent requests this hospital raised; how far each patient has read their inbox here"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision, down_revision = "0011", "0010"


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    moment = sqlmodel.sql.sqltypes.UTCDateTime
    op.create_table(
        "patient_links",
        sa.Column("patient", text(length=42), primary_key=True),
        sa.Column("mrn", text(length=64), nullable=True, unique=True),
        sa.Column("id_card_hash", text(length=64), nullable=True, index=True),
        sa.Column("issued_at", sa.BigInteger(), nullable=False),
        sa.Column("linked_at", moment(), nullable=True),
        sa.Column("removed_at", moment(), nullable=True),
        sa.Column("signature", text(length=132), nullable=False),
    )
    op.create_table(
        "patient_link_offers",
        sa.Column("code_hash", text(length=64), primary_key=True),
        sa.Column("patient", text(length=42), nullable=False, index=True),
        sa.Column("statement", sa.JSON(), nullable=False),
        sa.Column("expires_at", moment(), nullable=False, index=True),
    )
    op.create_table(
        "consent_requests",
        sa.Column("id", text(length=32), primary_key=True),
        sa.Column("patient", text(length=42), nullable=False, index=True),
        sa.Column("purposes", sa.Integer(), nullable=False),
        sa.Column("categories", sa.Integer(), nullable=False),
        sa.Column("care_from", sa.Date(), nullable=True),
        sa.Column("care_to", sa.Date(), nullable=True),
        sa.Column("access_from", sa.Date(), nullable=False),
        sa.Column("access_days", sa.Integer(), nullable=False),
        sa.Column("reason", text(length=500), nullable=False),
        sa.Column("custodians", sa.JSON(), nullable=False),
        sa.Column("raised_by", text(length=128), nullable=False),
        sa.Column("state", text(length=16), nullable=False, index=True),
        sa.Column("created_at", moment(), nullable=False),
        sa.Column("expires_at", moment(), nullable=False),
        sa.Column("decided_at", moment(), nullable=True),
        sa.Column("consent_id", text(length=78), nullable=True),
    )
    op.create_table(
        "inbox_marks",
        sa.Column("patient", text(length=42), primary_key=True),
        sa.Column("seen_until", moment(), nullable=False),
    )


def downgrade() -> None:
    for table in ("inbox_marks", "consent_requests", "patient_link_offers", "patient_links"):
        op.drop_table(table)
