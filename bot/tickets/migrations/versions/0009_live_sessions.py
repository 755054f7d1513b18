"""live handoff: 在线会话 sessions and their messages both ways

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "live_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sender_id", sa.String(length=255), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("open_key", sa.String(length=255), nullable=True),
        sa.Column("request_enc", sa.Text(), nullable=True),
        sa.Column("department", sa.String(length=64), nullable=True),
        sa.Column("ticket_number", sa.String(length=32), nullable=True),
        sa.Column("taken_by", sa.String(length=64), nullable=True),
        sa.Column("taken_at", sa.DateTime(), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("end_reason", sa.String(length=16), nullable=True),
        sa.Column("ended_by", sa.String(length=64), nullable=True),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("callback_number", sa.String(length=32), nullable=True),
        sa.Column("expiry_attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_live_sessions")),
        sa.UniqueConstraint("open_key", name=op.f("uq_live_sessions_open_key")),
    )
    op.create_index("ix_live_sessions_status", "live_sessions", ["status"], unique=False)
    op.create_index("ix_live_sessions_sender_id", "live_sessions", ["sender_id"], unique=False)
    op.create_table(
        "live_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("speaker", sa.String(length=16), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=True),
        sa.Column("text_enc", sa.Text(), nullable=False),
        sa.Column("flag", sa.String(length=16), nullable=True),
        sa.Column("delivery", sa.String(length=16), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"], ["live_sessions.id"],
            name=op.f("fk_live_messages_session_id_live_sessions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_live_messages")),
    )
    op.create_index("ix_live_messages_session_id", "live_messages", ["session_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_live_messages_session_id", table_name="live_messages")
    op.drop_table("live_messages")
    op.drop_index("ix_live_sessions_sender_id", table_name="live_sessions")
    op.drop_index("ix_live_sessions_status", table_name="live_sessions")
    op.drop_table("live_sessions")
