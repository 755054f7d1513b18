"""event content: an audit event's free text beside the chain (purge can empty it)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 10:05:00.000000

Older events keep their (masked) text in the payload, under the plain sha256
chain they were written with; new events keep it here and chain its HMAC.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ticket_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("content", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ticket_events", schema=None) as batch_op:
        batch_op.drop_column("content")
