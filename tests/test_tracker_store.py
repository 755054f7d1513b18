"""connectors.tracker_store: the same rows and trackers as Rasa's SQL store, and a cache
that never returns a conversation the database no longer holds."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore, create_tracker_store
from rasa.core.utils import read_endpoints_from_path
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    SessionStarted,
    SlotSet,
    UserUttered,
)

from bot.settings import ROOT
from connectors.tracker_store import CitizenTrackerStore

DOMAIN = Domain.from_yaml(
    """
version: "3.1"
intents: [greet, complain]
slots:
  case_place:
    type: text
    mappings: [{type: custom}]
responses:
  utter_greet: [{text: "您好"}]
"""
)


def _turn(tracker: object, text: str, at: float) -> None:
    tracker.update(UserUttered(text, {"name": "greet", "confidence": 0.9}, timestamp=at))
    tracker.update(ActionExecuted("utter_greet", timestamp=at + 0.1))
    tracker.update(BotUttered("您好", timestamp=at + 0.2))
    tracker.update(SlotSet("case_place", f"{text}路", timestamp=at + 0.3))
    tracker.update(ActionExecuted("action_listen", timestamp=at + 0.4))


def _rows(url: str) -> list[tuple]:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT sender_id, type_name, timestamp, intent_name, action_name, data "
                    "FROM events ORDER BY id")
        ).all()
    engine.dispose()
    return [tuple(row) for row in rows]


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The default profile's SQLite file, and the production profile's PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tracker.db'}"
        return
    from tests.production.cluster import Databases, pg_available

    if not pg_available():
        pytest.skip("PostgreSQL not running on 127.0.0.1")
    databases = Databases(prefix="cbts").create()
    try:
        yield databases.tracker_url
    finally:
        databases.drop()


def _conversation(store: object, sender: str, turns: int) -> object:
    async def run() -> object:
        tracker = await store.get_or_create_tracker(sender, append_action_listen=False)
        tracker.update(ActionExecuted("action_session_start", timestamp=1.0))
        tracker.update(SessionStarted(timestamp=1.1))
        tracker.update(ActionExecuted("action_listen", timestamp=1.2))
        await store.save(tracker)
        for index in range(turns):
            tracker = await store.retrieve(sender)
            _turn(tracker, f"第{index}句", 10.0 + index)
            await store.save(tracker)
        return await store.retrieve(sender)

    return asyncio.run(run())


def test_rows_and_trackers_are_rasas(tmp_path: Path) -> None:
    """Same table content and the same reloaded tracker as Rasa's SQLTrackerStore."""
    ours_url = f"sqlite:///{tmp_path / 'ours.db'}"
    rasa_url = f"sqlite:///{tmp_path / 'rasa.db'}"
    ours = _conversation(CitizenTrackerStore(domain=DOMAIN, host=ours_url), "rest:a", 4)
    theirs = _conversation(SQLTrackerStore(domain=DOMAIN, host=rasa_url), "rest:a", 4)
    assert _rows(ours_url) == _rows(rasa_url)
    assert ours.current_state() == theirs.current_state()
    reloaded = asyncio.run(SQLTrackerStore(domain=DOMAIN, host=ours_url).retrieve("rest:a"))
    assert reloaded.current_state() == theirs.current_state()


def test_each_save_appends_only_the_new_events(url: str) -> None:
    store = CitizenTrackerStore(domain=DOMAIN, host=url)
    _conversation(store, "rest:b", 3)
    assert len(_rows(url)) == 3 + 3 * 5
    # a tracker loaded elsewhere (no count remembered) still appends only what is new
    fresh = CitizenTrackerStore(domain=DOMAIN, host=url, cache_size=0)
    tracker = asyncio.run(fresh.retrieve("rest:b"))
    _turn(tracker, "再一句", 99.0)
    asyncio.run(SQLTrackerStore(domain=DOMAIN, host=url).save(tracker))
    assert len(_rows(url)) == 3 + 4 * 5


def test_cache_follows_writes_of_other_processes(url: str) -> None:
    """Another server appending, or retention deleting, sends the retrieve to the database."""
    store = CitizenTrackerStore(domain=DOMAIN, host=url)
    _conversation(store, "rest:c", 2)

    async def other_server_appends() -> None:
        other = CitizenTrackerStore(domain=DOMAIN, host=url, cache_size=0)
        tracker = await other.retrieve("rest:c")
        _turn(tracker, "另一台服务器", 50.0)
        await other.save(tracker)

    asyncio.run(other_server_appends())
    tracker = asyncio.run(store.retrieve("rest:c"))
    assert tracker.get_slot("case_place") == "另一台服务器路"
    asyncio.run(store.save(tracker))  # cached again

    engine = sa.create_engine(url)
    with engine.begin() as connection:  # what bot.tickets.retention does
        connection.execute(sa.text("DELETE FROM events WHERE timestamp >= 50"))
    engine.dispose()
    tracker = asyncio.run(store.retrieve("rest:c"))
    assert tracker.get_slot("case_place") == "第1句路"
    assert not any("另一台服务器" in str(event.as_dict()) for event in tracker.events)


def test_an_unsaved_turn_leaves_nothing_behind(url: str) -> None:
    """A turn abandoned without saving (action server down): the next message sees the
    conversation as it was stored, not the abandoned tracker."""
    store = CitizenTrackerStore(domain=DOMAIN, host=url)
    _conversation(store, "rest:d", 1)

    async def run() -> object:
        tracker = await store.retrieve("rest:d")
        _turn(tracker, "没保存", 70.0)  # never saved
        return await store.retrieve("rest:d")

    tracker = asyncio.run(run())
    assert tracker.get_slot("case_place") == "第0句路"
    stored = asyncio.run(SQLTrackerStore(domain=DOMAIN, host=url).retrieve("rest:d"))
    assert tracker.current_state() == stored.current_state()


def test_exists_and_other_conversations(url: str) -> None:
    store = CitizenTrackerStore(domain=DOMAIN, host=url)
    _conversation(store, "rest:e", 1)
    assert asyncio.run(store.exists("rest:e"))
    assert not asyncio.run(store.exists("rest:nobody"))
    assert asyncio.run(store.retrieve("rest:nobody")) is None
    stored = asyncio.run(SQLTrackerStore(domain=DOMAIN, host=url).retrieve("rest:e"))
    assert asyncio.run(store.retrieve("rest:e")).current_state() == stored.current_state()


def test_a_new_session_reloads_only_that_session(url: str) -> None:
    store = CitizenTrackerStore(domain=DOMAIN, host=url)
    _conversation(store, "rest:f", 2)

    async def new_session() -> object:
        tracker = await store.retrieve("rest:f")
        tracker.update(ActionExecuted("action_session_start", timestamp=200.0))
        tracker.update(SessionStarted(timestamp=200.1))
        tracker.update(ActionExecuted("action_listen", timestamp=200.2))
        await store.save(tracker)
        return await store.retrieve("rest:f")

    tracker = asyncio.run(new_session())
    expected = asyncio.run(SQLTrackerStore(domain=DOMAIN, host=url).retrieve("rest:f"))
    assert tracker.current_state() == expected.current_state()
    assert len(tracker.events) < 3 + 2 * 5


def test_endpoints_load_this_store(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rasa falls back to an in-memory store, silently, when a custom store fails to
    import: conversations would vanish on restart."""
    for name, value in {"TRACKER_STORE_URL": url, "ACTION_ENDPOINT_URL": "http://x/webhook",
                        "LOCK_STORE_TYPE": "in_memory", "LOCK_STORE_HOST": "",
                        "LOCK_STORE_PORT": "6379", "LOCK_STORE_DB": "1"}.items():
        monkeypatch.setenv(name, value)
    endpoints = read_endpoints_from_path(ROOT / "endpoints.yml")
    store = create_tracker_store(endpoints.tracker_store, DOMAIN)
    assert isinstance(getattr(store, "_tracker_store", store), CitizenTrackerStore)
