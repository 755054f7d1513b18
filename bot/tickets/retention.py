"""Retention outside the ticket tables: the Rasa conversations (tracker store).

Rasa's SQL tracker store keeps every event of every conversation for ever:
the raw phone numbers a citizen typed sit in its slots and ``user`` events. The
ticket keeps what the case needs, so a conversation older than the retention
period is not needed by anyone and is deleted with the tickets' personal data
(``citizenbot tickets purge``). Rasa loads a conversation from its last session
start, so deleting events older than the cutoff leaves recent sessions intact.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from sqlalchemy import MetaData, Table, delete, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.future import create_engine

log = logging.getLogger(__name__)

#: the table of ``rasa.core.tracker_store.SQLTrackerStore`` (sender_id, timestamp, data …)
TRACKER_TABLE = "events"


def purge_tracker(url: str, cutoff: datetime) -> int:
    """Delete tracker events older than ``cutoff``; returns how many (0 without a tracker).

    Never creates the database: a tracker store that was never started holds
    nothing to purge.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and (
        not parsed.database or not Path(parsed.database).exists()
    ):
        return 0
    engine = create_engine(parsed, future=True)
    try:
        if not inspect(engine).has_table(TRACKER_TABLE):
            return 0
        table = Table(TRACKER_TABLE, MetaData(), autoload_with=engine)
        if not {"sender_id", "timestamp", "data"} <= set(table.c.keys()):
            # a table of that name that is not Rasa's (the ticket store's is ticket_events)
            log.warning("%s: table %s is not a Rasa tracker; not purged", parsed.database,
                        TRACKER_TABLE)
            return 0
        with engine.begin() as conn:
            done = conn.execute(delete(table).where(table.c.timestamp < cutoff.timestamp()))
        return int(done.rowcount or 0)
    finally:
        engine.dispose()
