"""event state: keyed snapshot of every ticket field, chained with HMAC

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 10:30:00.000000

Events written before keep their plain sha256 links and no snapshot; a
ticket's next event starts its keyed part (``bot/tickets/audit.py``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ticket_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("state", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ticket_events", schema=None) as batch_op:
        batch_op.drop_column("state")
