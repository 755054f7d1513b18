"""phone index: keyed digest of the phone number, for audited lookups by staff

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 10:15:00.000000

Left empty here: the digest needs the decrypted phone and the audit key, so the
store fills it when it opens the database (``TicketStore._backfill_search``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("phone_index", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_tickets_phone_index", ["phone_index"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_phone_index")
        batch_op.drop_column("phone_index")
