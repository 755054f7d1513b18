"""search text: the masked text staff search (a full name or phone finds nothing)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 09:50:00.000000

Left empty here: masking needs the ticket's own (encrypted) name and numbers,
so the store fills it when it opens the database (``TicketStore._backfill_search``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("search_text", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_column("search_text")
