"""console accounts and undelivered WeChat messages join the Alembic chain

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 12:10:00.000000

The console made its three tables with ``create_all`` when it started, and the
WeChat channel kept refused messages in a SQLite file of its own under ``var/``
(outside DATABASE_URL and backups). A database the console already opened has
the console tables: they are created only where missing, with the same columns
and constraints ``create_all`` made. Messages in the old
``var/wechat_undelivered.db`` are not moved (it held only what an operator had
not yet handled; `docs/wechat.md` says how to read it).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _missing(name: str) -> bool:
    return not sa.inspect(op.get_bind()).has_table(name)


def upgrade() -> None:
    if _missing("console_users"):
        op.create_table(
            "console_users",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("username", sa.String(length=64), nullable=False),
            sa.Column("password_hash", sa.Text(), nullable=False),
            sa.Column("role", sa.String(length=16), nullable=False),
            sa.Column("department", sa.String(length=64), nullable=True),
            sa.Column("must_change_password", sa.Boolean(), nullable=False),
            sa.Column("disabled", sa.Boolean(), nullable=False),
            sa.Column("session_epoch", sa.Integer(), nullable=False),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.Column("updated_at", sa.DateTime(), nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_console_users")),
            sa.UniqueConstraint("username", name=op.f("uq_console_users_username")),
        )
    if _missing("console_api_tokens"):
        op.create_table(
            "console_api_tokens",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("user_id", sa.Integer(), nullable=False),
            sa.Column("label", sa.String(length=64), nullable=False),
            sa.Column("token_hash", sa.String(length=64), nullable=False),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.Column("last_used_at", sa.DateTime(), nullable=True),
            sa.Column("revoked", sa.Boolean(), nullable=False),
            sa.ForeignKeyConstraint(
                ["user_id"], ["console_users.id"],
                name=op.f("fk_console_api_tokens_user_id_console_users"),
            ),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_console_api_tokens")),
            sa.UniqueConstraint("token_hash", name=op.f("uq_console_api_tokens_token_hash")),
        )
    if _missing("console_notifications"):
        op.create_table(
            "console_notifications",
            sa.Column("number", sa.String(length=32), nullable=False),
            sa.Column("event", sa.String(length=16), nullable=False),
            sa.Column("status", sa.String(length=16), nullable=False),
            sa.Column("attempts", sa.Integer(), nullable=False),
            sa.Column("last_error", sa.Text(), nullable=True),
            sa.Column("updated_at", sa.DateTime(), nullable=False),
            sa.PrimaryKeyConstraint("number", name=op.f("pk_console_notifications")),
        )
    op.create_table(
        "wechat_undelivered",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("openid", sa.String(length=128), nullable=False),
        sa.Column("text_enc", sa.Text(), nullable=False),
        sa.Column("errcode", sa.Integer(), nullable=True),
        sa.Column("errmsg", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wechat_undelivered")),
    )


def downgrade() -> None:
    # the console tables predate this revision in most databases: keep them
    op.drop_table("wechat_undelivered")
