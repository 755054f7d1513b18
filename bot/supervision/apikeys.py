"""Open311 API keys: who may file reports through ``POST /open311/v2/requests``.

GeoReport v2 lets anyone read but asks a client to present an ``api_key`` to
write. Keys are issued per client (a civic app) with ``citizenbot open311 key
add LABEL``; the key is a long random string shown once, and only its SHA-256
is stored (nothing to brute-force, as with the console's API tokens). The
label names the client in the ticket's source and idempotency key.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timezone

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from bot.tickets.db import WRITE
from bot.tickets.schema import open311_keys

UTC = timezone.utc


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def issue(engine: Engine, label: str) -> str:
    """A new key for ``label`` (ValueError when the label exists)."""
    label = label.strip()[:64]
    if not label:
        raise ValueError("a label is required")
    key = secrets.token_urlsafe(32)
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(**{WRITE: True})
            with conn.begin():
                conn.execute(
                    insert(open311_keys).values(
                        label=label,
                        key_hash=_digest(key),
                        created_at=datetime.now(UTC).replace(tzinfo=None),
                        revoked=False,
                    )
                )
    except IntegrityError as exc:
        raise ValueError(f"label {label!r} exists") from exc
    return key


def revoke(engine: Engine, label: str) -> bool:
    with engine.connect() as conn:
        conn = conn.execution_options(**{WRITE: True})
        with conn.begin():
            done = conn.execute(
                update(open311_keys).where(open311_keys.c.label == label).values(revoked=True)
            )
    return bool(done.rowcount)


def client_for(engine: Engine, key: str | None) -> str | None:
    """The label of a valid, unrevoked key; None otherwise."""
    if not key or len(key) > 200:
        return None
    with engine.connect() as conn:
        row = conn.execute(
            select(open311_keys.c.label, open311_keys.c.revoked).where(
                open311_keys.c.key_hash == _digest(key)
            )
        ).first()
    if row is None or row.revoked:
        return None
    return str(row.label)


def listing(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                open311_keys.c.label, open311_keys.c.created_at, open311_keys.c.revoked
            ).order_by(open311_keys.c.label)
        ).all()
    return [
        {"label": r.label, "created_at": r.created_at.isoformat(), "revoked": r.revoked}
        for r in rows
    ]
