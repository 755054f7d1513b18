"""Looking at a ticket is audited but is no change: the version staff act on stays.

Issue 18: "显示完整号码（留痕）" bumped the ticket's version, so every form already
on the page (开始办理, 添加备注, 发送答复) then failed with 409. The store now
records a look (``contact_viewed``, ``contact_searched``, a refused claim) in the
audit chain without moving ``version``; a change whose row gained only looks
since it was read is chained onto the newer head instead of failing; a real
change in between is still a conflict, and :meth:`TicketStore.changes_since`
names it. On SQLite and on the real PostgreSQL (``tests/tickets/conftest.py``),
with real processes racing on PostgreSQL.
"""

from __future__ import annotations

import multiprocessing
from typing import Any

import pytest

from bot.settings import load_settings
from bot.tickets import Actor, ConflictError, NewTicket, Role, TicketStore
from bot.tickets.lifecycle import Action
from tests.tickets import conftest as tickets

# the ticket tests' fixtures (a fresh store on SQLite and on the real PostgreSQL) in
# place of this directory's own SQLite-only ``settings`` and ``store``
db_url, pg_url, sqlite_template, pii_keys = (
    tickets.db_url,
    tickets.pg_url,
    tickets.sqlite_template,
    tickets.pii_keys,
)
env, settings, clock, store = tickets.env, tickets.settings, tickets.clock, tickets.store

ENV = "市生态环境局"
DISPATCHER = Actor(Role.DISPATCHER, "disp")
STAFF = Actor(Role.DEPARTMENT, "env1", ENV)
COLLEAGUE = Actor(Role.DEPARTMENT, "env2", ENV)
PHONE = "13812345678"


def _dispatched(store: TicketStore) -> Any:
    view = store.create(
        NewTicket(
            channel="webchat",
            kind="complaint",
            summary="小区门口烧烤油烟扰民",
            sender_id="webchat:citizen-1",
            phone=PHONE,
        )
    )
    return store.dispatch(view.number, ENV, DISPATCHER)


def test_revealing_the_phone_is_audited_and_keeps_the_version(store: TicketStore) -> None:
    view = _dispatched(store)
    assert store.contact(view.number, STAFF).phone == PHONE
    store.list(query=PHONE, actor=STAFF)  # found by the full number: also audited
    after = store.get(view.number)
    assert (after.version, after.updated_at, after.status) == (
        view.version,
        view.updated_at,
        view.status,
    )
    history = store.history(view.number)
    assert [e["action"] for e in history[-2:]] == ["contact_viewed", "contact_searched"]
    assert history[-2]["actor_name"] == "env1"
    assert store.verify_audit() == []
    # the forms drawn before the look still apply, one after the other
    started = store.start(view.number, STAFF, expected_version=view.version)
    noted = store.add_note(view.number, "已电话联系", STAFF, expected_version=started.version)
    store.contact(view.number, STAFF)
    replied = store.reply(view.number, "已处理", STAFF, expected_version=noted.version)
    assert replied.status.value == "replied"
    assert store.verify_audit() == []


def test_a_change_is_chained_onto_looks_that_came_in_between(store: TicketStore) -> None:
    """The race the store retries: the row was read, then someone looked, then it writes."""
    view = _dispatched(store)
    with store._read() as conn:
        stale = store._load(conn, view.number)
    store.contact(view.number, COLLEAGUE)
    with store._write() as conn:
        row = store._record(conn, stale, STAFF, Action.NOTE, payload={"text": "先读后写"})
    assert row.version == view.version + 1 and row.event_count == stale.event_count + 2
    assert [e["action"] for e in store.history(view.number)[-2:]] == ["contact_viewed", "note"]
    assert store.verify_audit() == []


def test_a_change_in_between_is_still_a_conflict(store: TicketStore) -> None:
    view = _dispatched(store)
    with store._read() as conn:
        stale = store._load(conn, view.number)
    store.add_note(view.number, "同事的备注", COLLEAGUE)
    with pytest.raises(ConflictError), store._write() as conn:
        store._record(conn, stale, STAFF, Action.NOTE, payload={"text": "会覆盖吗"})
    with pytest.raises(ConflictError):
        store.reply(view.number, "旧页面的答复", STAFF, expected_version=view.version)
    # a look needs no version: it is chained onto whatever the ticket is now
    with store._write() as conn:
        store._record(conn, stale, STAFF, Action.CONTACT_VIEWED, payload={})
    assert store.get(view.number).reply is None
    assert store.verify_audit() == []


def test_changes_since_names_what_a_stale_form_missed(store: TicketStore) -> None:
    view = _dispatched(store)
    store.contact(view.number, STAFF)
    store.start(view.number, COLLEAGUE)
    store.contact(view.number, COLLEAGUE)
    store.add_note(view.number, "已约好上门时间", COLLEAGUE)
    changes = store.changes_since(view.number, view.version)
    assert [(c["action"], c["actor_name"], c["version"]) for c in changes] == [
        ("start", "env2", view.version + 1),
        ("note", "env2", view.version + 2),
    ]
    assert changes[1]["payload"]["text"] == "已约好上门时间"
    assert store.changes_since(view.number, view.version + 2) == []
    assert store.changes_since(view.number, view.version + 9) == []


def _reveal(env: dict[str, str], number: str, times: int, barrier: Any) -> int:
    store = TicketStore(env["DATABASE_URL"], upgrade=False, settings=load_settings(env))
    barrier.wait(timeout=30)
    try:
        for _ in range(times):
            store.contact(number, COLLEAGUE)
    finally:
        store.dispose()
    return times


def _work(env: dict[str, str], number: str, times: int, barrier: Any) -> list[str]:
    """What a person does with a page: read the version, then act on it."""
    store = TicketStore(env["DATABASE_URL"], upgrade=False, settings=load_settings(env))
    barrier.wait(timeout=30)
    results = []
    try:
        for i in range(times):
            seen = store.get(number).version
            try:
                store.add_note(number, f"备注 {i}", STAFF, expected_version=seen)
                results.append("ok")
            except ConflictError:
                results.append("conflict")
    finally:
        store.dispose()
    return results


@pytest.mark.parametrize(
    "db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_looks_racing_with_work_never_cause_a_conflict(
    store: TicketStore, env: dict[str, str]
) -> None:
    view = _dispatched(store)
    context = multiprocessing.get_context("spawn")
    barrier = context.Manager().Barrier(3)
    with context.Pool(3) as pool:
        looks = [
            pool.apply_async(_reveal, (env, view.number, 40, barrier)),
            pool.apply_async(_reveal, (env, view.number, 40, barrier)),
        ]
        work = pool.apply_async(_work, (env, view.number, 40, barrier))
        notes = work.get(timeout=120)
        assert [r.get(timeout=120) for r in looks] == [40, 40]
    assert notes == ["ok"] * 40
    history = store.history(view.number)
    assert sum(e["action"] == "contact_viewed" for e in history) == 80
    assert store.get(view.number).version == view.version + 40
    assert store.verify_audit() == []
