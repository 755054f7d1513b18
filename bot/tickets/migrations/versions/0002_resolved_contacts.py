"""resolved contacts: calls answered on the spot, kept for statistics only

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 18:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "resolved_contacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("intent", sa.String(length=64), nullable=True),
        sa.Column("category", sa.String(length=32), nullable=True),
        sa.Column("category_confidence", sa.Float(), nullable=True),
        sa.Column("service", sa.String(length=255), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("agent", sa.String(length=255), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resolved_contacts")),
        sa.UniqueConstraint(
            "idempotency_key", name=op.f("uq_resolved_contacts_idempotency_key")
        ),
    )
    with op.batch_alter_table("resolved_contacts", schema=None) as batch_op:
        batch_op.create_index("ix_resolved_contacts_created_at", ["created_at"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("resolved_contacts", schema=None) as batch_op:
        batch_op.drop_index("ix_resolved_contacts_created_at")

    op.drop_table("resolved_contacts")
