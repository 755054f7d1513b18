"""Rasa's SQL tracker store without its per-message costs (``endpoints.yml`` names it).

Profiled under load (docs/performance.md), Rasa 3.6's ``SQLTrackerStore`` was the
largest share of a turn on the Rasa server, and all of it ran on the event loop:

* every save counted the session's stored events (a query that grows with the
  conversation) to know which events are new, added them through the ORM and
  committed — on SQLite an ``fsync`` per turn with every other request waiting;
* every message reloaded the whole session from the database (JSON-decoding and
  replaying each event) although this process had saved that very tracker a
  moment earlier; and SQLite files got a new connection per query (NullPool).

:class:`CitizenTrackerStore` stores the same rows in the same table (Rasa's
``events`` schema, so retention, the console and Rasa's own store read them as
before) and keeps every guarantee of the original:

* **Off the event loop.** Reads and writes run in a dedicated thread (one for
  SQLite, so the file has a single writer; a few for PostgreSQL).
* **Appends only what is new, without counting.** A tracker remembers how many
  of its events are stored (those it was loaded with, then those saved), so a
  save inserts exactly the events after that number, in one statement. A
  tracker this store did not load falls back to Rasa's count query.
* **A cache that cannot go stale.** The tracker saved last is kept (bounded
  LRU) with the conversation's row count and highest row id after the save.
  The next message's retrieve asks the database for both (one indexed query)
  and takes the cached tracker only when they are unchanged: another Rasa
  server appending to the conversation, or the retention job deleting from it,
  sends the retrieve to the database as before. A retrieved tracker leaves the
  cache, so a turn abandoned without saving (``connectors.rasa_hooks``) leaves
  nothing behind, and a tracker is never handed out twice. A save that starts a
  new session is not cached (a reload holds only the new session).
* **SQLite in WAL mode** with ``synchronous=NORMAL``: readers never wait for
  the writer and a commit needs no ``fsync``; a committed turn survives a crash
  of any process, and the database stays consistent on power loss (the last
  turns before it may be lost — a citizen resends; tickets live in the ticket
  store, which keeps its own settings). One pooled connection instead of one
  per query.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import SessionStarted
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY

logger = logging.getLogger(__name__)

#: attribute on a tracker: how many of its events (from the session start) are stored
PERSISTED = "_citizenbot_persisted"
#: conversations whose last saved tracker is kept in memory, by default
DEFAULT_CACHE_SIZE = 512


@dataclass
class _Cached:
    tracker: DialogueStateTracker
    #: (row count, highest row id) of the conversation right after the save
    state: tuple[int, int]
    #: number of events the tracker had when saved (a later change means unsaved events)
    length: int


class CitizenTrackerStore(SQLTrackerStore):
    """``SQLTrackerStore`` with off-loop I/O, count-free appends and a validated cache."""

    engine: sa.engine.Engine  # set by SQLTrackerStore.__init__; replaced on SQLite

    def __init__(
        self,
        domain: Any = None,
        host: str | None = None,
        event_broker: Any = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
        **kwargs: Any,
    ) -> None:
        super().__init__(domain=domain, host=host, event_broker=event_broker, **kwargs)
        self.sqlite = self.engine.dialect.name == "sqlite"
        if self.sqlite:
            self._use_wal_engine()
        self._table = self.SQLEvent.__table__
        # built once: constructing them was a third of each query's cost on a turn
        table = self._table
        self._state_query = sa.select(sa.func.count(table.c.id), sa.func.max(table.c.id)).where(
            table.c.sender_id == sa.bindparam("sender_id")
        )
        self._insert = table.insert()
        self._executor = ThreadPoolExecutor(
            max_workers=1 if self.sqlite else 4, thread_name_prefix="tracker-store"
        )
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        self._cache_size = int(cache_size)

    def _use_wal_engine(self) -> None:
        """One shared connection in WAL mode instead of a new connection per query."""
        url = self.engine.url
        self.engine.dispose()
        engine = sa.create_engine(
            url,
            poolclass=sa.pool.QueuePool,
            pool_size=2,
            max_overflow=2,
            connect_args={"check_same_thread": False, "timeout": 30},
        )

        @sa.event.listens_for(engine, "connect")
        def _pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        self.engine = engine
        self.sessionmaker = sa.orm.session.sessionmaker(bind=engine)

    async def _in_thread(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # -- reading ---------------------------------------------------------------------

    def _state(self, connection: Any, sender_id: str) -> tuple[int, int]:
        """(row count, highest row id) of a conversation: what the cache is checked by."""
        count, highest = connection.execute(
            self._state_query, {"sender_id": sender_id}
        ).one()
        return int(count or 0), int(highest or 0)

    def _load(
        self, sender_id: str, all_sessions: bool, cached_state: tuple[int, int] | None
    ) -> tuple[str, Any]:
        """In the store's thread: ("cached", None) when the cache is current, else
        ("loaded", event dicts) — Rasa's own query, so the same events as before."""
        with self.engine.connect() as connection:
            if cached_state is not None and self._state(connection, sender_id) == cached_state:
                return "cached", None
        with self.session_scope() as session:
            rows = self._event_query(
                session, sender_id, fetch_events_from_all_sessions=all_sessions
            ).all()
            return "loaded", [json.loads(row.data) for row in rows]

    async def _retrieve(
        self, sender_id: str, fetch_events_from_all_sessions: bool
    ) -> DialogueStateTracker | None:
        cached = None if fetch_events_from_all_sessions else self._cache.pop(sender_id, None)
        if cached is not None and len(cached.tracker.events) != cached.length:
            cached = None  # changed after its save: those events are not stored
        kind, events = await self._in_thread(
            self._load, sender_id, fetch_events_from_all_sessions,
            cached.state if cached else None,
        )
        if kind == "cached" and cached is not None:
            return cached.tracker
        if not (self.domain and events):
            return None
        tracker = DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)
        if not fetch_events_from_all_sessions:
            setattr(tracker, PERSISTED, len(events))
        return tracker

    async def exists(self, conversation_id: str) -> bool:
        """Without loading (Rasa's default retrieves, which would empty the cache)."""

        def count() -> int:
            with self.engine.connect() as connection:
                return self._state(connection, conversation_id)[0]

        return bool(await self._in_thread(count))

    # -- writing ---------------------------------------------------------------------

    def _stored_count(self, sender_id: str) -> int:
        """Rasa's count of stored events since the last session start (the fallback)."""
        with self.session_scope() as session:
            return int(
                self._event_query(session, sender_id, fetch_events_from_all_sessions=False)
                .count()
            )

    def _write(
        self, sender_id: str, events: list[Any], persisted: int | None
    ) -> tuple[tuple[int, int], bool]:
        """In the store's thread: insert the unsaved events in one transaction.

        Returns the conversation's state after the write and whether the written
        events start a new session.
        """
        start = persisted if persisted is not None else self._stored_count(sender_id)
        with self.engine.begin() as connection:
            rows = []
            new_session = False
            for event in events[start:]:
                data = event.as_dict()
                new_session = new_session or isinstance(event, SessionStarted)
                rows.append(
                    {
                        "sender_id": sender_id,
                        "type_name": event.type_name,
                        "timestamp": data.get("timestamp"),
                        "intent_name": (data.get("parse_data") or {})
                        .get("intent", {})
                        .get(INTENT_NAME_KEY),
                        "action_name": data.get("name"),
                        "data": json.dumps(data),
                    }
                )
            if rows:
                connection.execute(self._insert, rows)
            return self._state(connection, sender_id), new_session

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Append the tracker's unsaved events (off the event loop) and cache it."""
        await self.stream_events(tracker)
        events = list(tracker.events)
        persisted = getattr(tracker, PERSISTED, None)
        if persisted is not None and persisted > len(events):
            persisted = None  # not the tracker we counted for: ask the database
        state, new_session = await self._in_thread(
            self._write, tracker.sender_id, events, persisted
        )
        setattr(tracker, PERSISTED, len(events))
        self._cache.pop(tracker.sender_id, None)
        if events and not new_session and self._cache_size > 0:
            self._cache[tracker.sender_id] = _Cached(tracker, state, len(events))
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        logger.debug("tracker %s: %d event(s) stored", tracker.sender_id,
                     len(events) - (persisted or 0))
