"""Database tables of the ticket store (SQLAlchemy Core).

Core tables rather than ORM classes: every write is an explicit
``UPDATE ... WHERE version = :v`` whose row count decides conflicts, which is
clearer here than the ORM's unit of work. Times are stored as naive UTC
(portable between SQLite and PostgreSQL) and made aware when read. JSON is
stored as text so that the audit hash covers exactly the bytes stored.

Any change here needs a new Alembic revision in ``migrations/versions``;
``tests/tickets/test_migrations.py`` fails when the two drift apart.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

tickets = Table(
    "tickets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("number", String(32), nullable=False, unique=True),
    Column("idempotency_key", String(255), unique=True),
    Column("status", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("sender_id", String(255)),
    Column("source", String(255)),
    Column("summary", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("place", String(255)),
    Column("occurred", String(255)),
    Column("phone_enc", Text),
    Column("id_number_enc", Text),
    Column("name_enc", Text),
    Column("predicted_category", String(32)),
    Column("category", String(32)),
    Column("category_confidence", Float),
    Column("department", String(64)),
    Column("sla_class", String(32), nullable=False),
    Column("deadline", DateTime, nullable=False),
    Column("paused_at", DateTime),
    Column("escalated_at", DateTime),
    Column("reply", Text),
    Column("replied_at", DateTime),
    Column("rating", Integer),
    Column("rating_solved", Boolean),
    Column("rating_comment", Text),
    Column("reopen_count", Integer, nullable=False),
    Column("duplicate_of", String(32)),
    #: 公开答复 the one text written for publication (Open311); staff write it, masked
    Column("public_note", Text),
    #: masked, NFKC, lower-case summary/description/place/note: what staff search
    Column("search_text", Text),
    #: keyed digest (HMAC, audit key) of the phone's digits: staff find a caller's tickets
    #: by full number (audited) without the number being searchable in the clear
    Column("phone_index", String(64)),
    Column("transcript", Text, nullable=False),
    Column("attachments", Text, nullable=False),
    Column("facts", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("closed_at", DateTime),
    Column("purged_at", DateTime),
    Column("event_count", Integer, nullable=False),
    Column("last_event_hash", String(64), nullable=False),
    Index("ix_tickets_status_deadline", "status", "deadline"),
    Index("ix_tickets_department_status", "department", "status"),
    Index("ix_tickets_sender_id", "sender_id"),
    Index("ix_tickets_created_at", "created_at"),
    Index("ix_tickets_phone_index", "phone_index"),
)

events = Table(
    "ticket_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("ticket_id", Integer, ForeignKey("tickets.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("action", String(32), nullable=False),
    Column("actor_role", String(16), nullable=False),
    Column("actor_name", String(255), nullable=False),
    Column("actor_department", String(64)),
    Column("at", DateTime, nullable=False),
    Column("from_status", String(16)),
    Column("to_status", String(16)),
    Column("reason", Text, nullable=False),
    Column("payload", Text, nullable=False),
    #: free text of the event (masked), outside the chain: the payload holds its HMAC,
    #: so purge can empty it without breaking the chain
    Column("content", Text),
    #: keyed digests of every ticket field after this event (audit.snapshot), chained
    Column("state", Text),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("ticket_id", "seq", name="uq_ticket_events_ticket_seq"),
)

counters = Table(
    "ticket_counters",
    metadata,
    Column("day", String(32), primary_key=True),
    Column("last", Integer, nullable=False),
)

duplicate_links = Table(
    "ticket_duplicate_links",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("ticket_id", Integer, ForeignKey("tickets.id"), nullable=False),
    Column("candidate_id", Integer, ForeignKey("tickets.id"), nullable=False),
    Column("score", Float, nullable=False),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("ticket_id", "candidate_id", name="uq_ticket_duplicate_links_pair"),
)

routing_corrections = Table(
    "routing_corrections",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("ticket_id", Integer, ForeignKey("tickets.id"), nullable=False),
    Column("text", Text, nullable=False),
    Column("predicted", String(32)),
    Column("predicted_confidence", Float),
    Column("corrected", String(32), nullable=False),
    Column("department", String(64), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("at", DateTime, nullable=False),
)

#: Calls and messages settled on the spot (an inquiry answered on the hotline):
#: counted for statistics, never worked, so no ticket, number, clock or audit chain.
#: No personal data: nothing is followed up, so nothing to call back (PIPL minimisation).
resolved_contacts = Table(
    "resolved_contacts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("idempotency_key", String(255), nullable=False, unique=True),
    Column("channel", String(32), nullable=False),
    Column("source", String(255)),
    Column("kind", String(16), nullable=False),
    Column("intent", String(64)),
    Column("category", String(32)),
    Column("category_confidence", Float),
    Column("service", String(255)),
    Column("summary", Text, nullable=False),
    Column("agent", String(255)),
    Column("started_at", DateTime),
    Column("created_at", DateTime, nullable=False),
    Index("ix_resolved_contacts_created_at", "created_at"),
)

#: 预警 surge warnings of the early-warning rule (bot/supervision/surge.py), one row per
#: surge episode of a category × district: consecutive flagged days extend ``last_day``.
warnings = Table(
    "warnings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("category", String(32), nullable=False),
    Column("district", String(64), nullable=False),
    Column("first_day", String(10), nullable=False),
    Column("last_day", String(10), nullable=False),
    Column("count", Integer, nullable=False),
    Column("baseline", Float, nullable=False),
    Column("p_value", Float, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("acknowledged_at", DateTime),
    Column("acknowledged_by", String(64)),
    UniqueConstraint("category", "district", "first_day", name="uq_warnings_episode"),
    Index("ix_warnings_last_day", "last_day"),
)

#: Open311 GeoReport v2 API keys (bot/console/open311.py): only a SHA-256 of the key
#: is kept (keys are long random strings, shown once).
open311_keys = Table(
    "open311_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("label", String(64), nullable=False, unique=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime, nullable=False),
    Column("revoked", Boolean, nullable=False),
)

# -- 转人工 live chat (bot/tickets/live.py) -------------------------------------------

live_sessions = Table(
    "live_sessions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("sender_id", String(255), nullable=False),
    Column("channel", String(32), nullable=False),
    #: waiting | taken | ended
    Column("status", String(16), nullable=False),
    #: the sender id while the session is open, NULL once ended: one open session a citizen
    Column("open_key", String(255), unique=True),
    #: what the citizen asked for (encrypted): the call-back ticket's summary if nobody takes it
    Column("request_enc", Text),
    #: the department whose queue shows it too (NULL: the centre only)
    Column("department", String(64)),
    #: the conversation's ticket when the handoff happened (context for staff)
    Column("ticket_number", String(32)),
    Column("taken_by", String(64)),
    Column("taken_at", DateTime),
    #: not taken by then: the session becomes a call-back ticket (HANDOFF_WAIT_MINUTES)
    Column("expires_at", DateTime, nullable=False),
    #: handed_back | closed | expired | cancelled | lapsed
    Column("end_reason", String(16)),
    Column("ended_by", String(64)),
    Column("ended_at", DateTime),
    Column("callback_number", String(32)),
    #: times the console asked Rasa to tell the citizen their wait is over
    Column("expiry_attempts", Integer, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("version", Integer, nullable=False),
    Index("ix_live_sessions_status", "status"),
    Index("ix_live_sessions_sender_id", "sender_id"),
)

live_messages = Table(
    "live_messages",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("session_id", Integer, ForeignKey("live_sessions.id"), nullable=False),
    #: citizen | bot | staff | system
    Column("speaker", String(16), nullable=False),
    #: the staff member who wrote it
    Column("author", String(64)),
    Column("text_enc", Text, nullable=False),
    #: before: the conversation before the handoff; emergency: danger recognised in it
    Column("flag", String(16)),
    #: staff messages: pending | sent | failed
    Column("delivery", String(16)),
    Column("error", Text),
    Column("at", DateTime, nullable=False),
    Index("ix_live_messages_session_id", "session_id"),
)

# -- console accounts (bot/console/accounts.py) ------------------------------------
# In the ticket database and on this Alembic chain like every table, so that one
# backup, one DATABASE_URL and one migration history cover everything.

console_users = Table(
    "console_users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("role", String(16), nullable=False),
    Column("department", String(64)),
    Column("must_change_password", Boolean, nullable=False),
    Column("disabled", Boolean, nullable=False),
    #: bumped on password reset / disable: every session signed with the old value ends
    Column("session_epoch", Integer, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

console_api_tokens = Table(
    "console_api_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("console_users.id"), nullable=False),
    Column("label", String(64), nullable=False),
    #: SHA-256 of the token; the token itself is shown once
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime, nullable=False),
    Column("last_used_at", DateTime),
    Column("revoked", Boolean, nullable=False),
)

#: last attempt to tell the citizen about a reply or closing, one row per ticket
console_notifications = Table(
    "console_notifications",
    metadata,
    Column("number", String(32), primary_key=True),
    Column("event", String(16), nullable=False),
    #: pending | sent | failed | callback (no chat channel: staff call back)
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text),
    Column("updated_at", DateTime, nullable=False),
)

#: bot messages WeChat refused (connectors/wechat/api.py), for staff to follow up;
#: the text is encrypted like other personal data and kept re-sendable
wechat_undelivered = Table(
    "wechat_undelivered",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("created_at", DateTime, nullable=False),
    Column("openid", String(128), nullable=False),
    Column("text_enc", Text, nullable=False),
    Column("errcode", Integer),
    Column("errmsg", Text, nullable=False),
)
