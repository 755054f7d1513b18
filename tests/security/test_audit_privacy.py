"""Issue 17, item 3: nothing personal in the audit trail, and retention that removes it.

The auditor's attack on the add-info entry: the trail stored sha256 of the raw
text, so trying every phone number behind ``139****5678`` (10,000 guesses)
recovered it at once. Here the same attack runs against everything the trail
holds and finds nothing. Then purge: past retention, the ticket keeps no place,
no free text and no contact details, its audit events keep no text either
(and the chain still verifies), and the citizen's Rasa conversation is gone.
Files holding any of it are readable by their owner only.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import stat
from pathlib import Path

from sqlalchemy import select, text

from bot.settings import Settings, load_settings
from bot.tickets import Actor, NewTicket, TicketStore
from bot.tickets.schema import events, tickets
from tests.tickets import conftest as _tickets
from tests.tickets.conftest import Clock

clock = _tickets.clock
db_url = _tickets.db_url
env = _tickets.env
pg_url = _tickets.pg_url
pii_keys = _tickets.pii_keys
settings = _tickets.settings
sqlite_template = _tickets.sqlite_template
store = _tickets.store

PHONE = "13912345678"
ID_NUMBER = "11010519491231002X"
PLACE = "A2区幸福路8号3栋501室"
STAFF = Actor("dispatcher", "wang")


def _trail(store: TicketStore, number: str) -> str:
    """Every stored byte of the ticket's audit events, as one string."""
    with store.engine.connect() as conn:
        ticket_id = conn.execute(select(tickets.c.id).where(tickets.c.number == number)).scalar()
        rows = conn.execute(select(events).where(events.c.ticket_id == ticket_id)).all()
    return "\n".join(str(tuple(r)) for r in rows)


def test_the_trail_holds_no_personal_data_nor_a_hash_of_it(store: TicketStore) -> None:
    owner = Actor.citizen("wechat:o-1")
    view = store.create(
        NewTicket(channel="wechat", kind="complaint", summary="楼道堆放杂物",
                  description="楼道堆放杂物", sender_id="wechat:o-1", place=PLACE,
                  phone=PHONE, category="城乡建设", category_confidence=0.9)
    )
    info = f"补充：我的电话{PHONE}，身份证{ID_NUMBER}"
    store.add_info(view.number, info, owner)
    trail = _trail(store, view.number)
    assert PHONE not in trail and ID_NUMBER not in trail
    for raw in (info, PHONE, ID_NUMBER):
        for algorithm in ("sha256", "sha1", "md5"):
            assert hashlib.new(algorithm, raw.encode()).hexdigest() not in trail
    # the auditor's attack: every phone number behind the mask, hashed as the text was
    for guess in range(10_000):
        candidate = f"139{guess:04d}5678"
        for raw in (candidate, info.replace(PHONE, candidate)):
            assert hashlib.sha256(raw.encode()).hexdigest() not in trail
    # what the entry proves is under a key the database does not hold
    add_info = store.history(view.number)[-1]
    assert add_info["action"] == "add_info" and len(add_info["payload"]["content_hmac"]) == 64
    assert "139****5678" in add_info["payload"]["text"]
    assert store.verify_audit() == []


def test_an_edited_audit_text_is_named(store: TicketStore) -> None:
    view = store.create(NewTicket(channel="hotline", kind="complaint", summary="噪音扰民"))
    store.add_note(view.number, "已电话联系，市民同意延期", STAFF)
    with store.engine.begin() as conn:
        conn.execute(
            events.update()
            .where(events.c.action == "note")
            .values(content='{"text":"市民不同意"}')
        )
    [problem] = store.verify_audit()
    assert view.number in problem and "note" in problem and "content" in problem


def _rasa_conversation(path: Path, sender: str, when: float) -> None:
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.events import UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    tracker_store = SQLTrackerStore(dialect="sqlite", db=str(path))
    tracker = DialogueStateTracker(sender, [])
    tracker.update(UserUttered(f"我的电话是{PHONE}", timestamp=when))
    asyncio.run(tracker_store.save(tracker))


def test_purge_removes_place_text_and_the_conversation(
    store: TicketStore, settings: Settings, clock: Clock
) -> None:
    sender = "wechat:o-2"
    tracker_db = settings.var_dir / "tracker.db"
    _rasa_conversation(tracker_db, sender, clock.now.timestamp())
    view = store.create(
        NewTicket(channel="wechat", kind="complaint", summary=f"{PLACE}楼道堆放杂物",
                  description=f"我叫王建国，住{PLACE}，电话{PHONE}", sender_id=sender,
                  place=PLACE, phone=PHONE, name="王建国", category="城乡建设",
                  category_confidence=0.9)
    )
    staff = Actor("dispatcher", "wang")
    store.add_note(view.number, f"市民住{PLACE}", staff)
    store.start(view.number, staff)
    store.reply(view.number, f"已到{PLACE}现场清理", staff)
    store.rate(view.number, 5, True, "很满意，王建国", Actor.citizen(sender))
    clock.advance(days=settings.ticket_retention_days + 1)
    _rasa_conversation(tracker_db, "wechat:o-3", clock.now.timestamp() - 3600)  # recent

    assert store.purge(place_label=lambda place, summary: "A2区") == [view.number]
    with store.engine.connect() as conn:
        row = conn.execute(select(tickets).where(tickets.c.number == view.number)).one()
    # hashes (hex) may hold any digits by chance: look at everything else
    stored = re.sub(r"[0-9a-f]{16,}", "#", str(tuple(row)) + _trail(store, view.number))
    for secret in ("幸福路", "501", "王建国", "建国", "5678", "很满意", "现场清理", sender):
        assert secret not in stored, secret
    assert row.place == "A2区" and row.category == "城乡建设" and row.rating == 5
    assert store.verify_audit() == []
    with store.engine.connect() as conn:
        contents = conn.execute(select(events.c.content).where(events.c.ticket_id == row.id))
        assert [c for c in contents.scalars() if c] == []
    from sqlalchemy.future import create_engine

    tracker = create_engine(f"sqlite:///{tracker_db}", future=True)
    with tracker.connect() as conn:
        senders = set(conn.execute(text("SELECT sender_id FROM events")).scalars())
    tracker.dispose()
    assert sender not in senders and "wechat:o-3" in senders


def test_database_and_var_files_are_private(tmp_path: Path, env: dict[str, str]) -> None:
    var = tmp_path / "fresh-var"
    url = f"sqlite:///{var / 'tickets.db'}"
    settings = load_settings({**env, "VAR_DIR": str(var), "DATABASE_URL": url, "PII_KEY": ""})
    old = os.umask(0o022)  # a usual login shell's umask
    try:
        fresh = TicketStore(url, settings=settings)
        fresh.create(NewTicket(channel="hotline", kind="complaint", summary="噪音"))
        fresh.dispose()
    finally:
        os.umask(old)
    for path in var.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path.name} is {oct(mode)}"
    names = {p.name for p in var.rglob("*")}
    assert {"tickets.db", "pii_key.secret", "audit_key.secret"} <= names


def test_old_retention_window_counts_from_closing(store: TicketStore, clock: Clock) -> None:
    """A ticket closed yesterday keeps its data, whatever its age (retention runs from 办结)."""
    view = store.create(NewTicket(channel="hotline", kind="complaint", summary="噪音",
                                  place=PLACE, phone=PHONE))
    clock.advance(days=400)
    store.merge(view.number, store.create(NewTicket(channel="hotline", kind="complaint",
                                                    summary="噪音")).number, STAFF)
    clock.advance(days=1)
    assert store.purge() == []
    assert store.get(view.number).place == PLACE
