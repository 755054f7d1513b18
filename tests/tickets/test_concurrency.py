"""Several OS processes on one ticket database: no lost update, unique numbers."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from multiprocessing.managers import SyncManager
from multiprocessing.pool import Pool

import pytest

from bot.tickets import TicketStore
from tests.tickets import workers
from tests.tickets.conftest import Clock
from tests.tickets.helpers import complaint

SPAWN = multiprocessing.get_context("spawn")
# Each task waits on a barrier, so a busy worker never takes a second task of the
# same call: with chunksize=1 every task of a call runs in its own process.


@pytest.fixture(scope="module")
def pool() -> Iterator[Pool]:
    """Three spawned worker processes shared by the tests (starting them is the slow part)."""
    with SPAWN.Pool(3) as workers_pool:
        yield workers_pool


@pytest.fixture(scope="module")
def manager() -> Iterator[SyncManager]:
    with SPAWN.Manager() as sync_manager:
        yield sync_manager


def test_two_processes_one_wins_the_other_conflicts(
    store: TicketStore, env: dict[str, str], pool: Pool, manager: SyncManager
) -> None:
    ticket = store.create(complaint())
    barrier = manager.Barrier(2)
    results = pool.starmap(
        workers.note_with_version,
        [(env, ticket.number, "a", barrier), (env, ticket.number, "b", barrier)],
        chunksize=1,
    )
    assert sorted(results) == ["conflict", "ok"]
    notes = [e for e in store.history(ticket.number) if e["action"] == "note"]
    assert len(notes) == 1
    assert store.get(ticket.number).version == ticket.version + 1
    assert store.verify_audit() == []


def test_no_update_is_lost_under_contention(
    store: TicketStore, env: dict[str, str], pool: Pool, manager: SyncManager
) -> None:
    ticket = store.create(complaint())
    barrier = manager.Barrier(2)
    results = pool.starmap(
        workers.hammer_notes,
        [(env, ticket.number, "a", 15, barrier), (env, ticket.number, "b", 15, barrier)],
        chunksize=1,
    )
    outcome = Counter(r for batch in results for r in batch)
    notes = [e for e in store.history(ticket.number) if e["action"] == "note"]
    assert len(notes) == outcome["ok"] > 0
    assert set(outcome) <= {"ok", "conflict"}
    assert store.verify_audit() == []


def test_concurrent_creation_gives_unique_numbers(
    store: TicketStore, env: dict[str, str], pool: Pool, manager: SyncManager
) -> None:
    barrier = manager.Barrier(3)
    results = pool.starmap(
        workers.create_many, [(env, name, 12, barrier) for name in ("a", "b", "c")], chunksize=1
    )
    shared = {batch[-1] for batch in results}
    assert len(shared) == 1  # the same idempotency key gave one ticket to all three
    numbers = [n for batch in results for n in batch[:-1]] + list(shared)
    assert len(numbers) == len(set(numbers)) == 37
    counters = sorted(int(n.rsplit("-", 1)[1]) for n in numbers)
    assert counters == list(range(1, 38))
    assert len(store.list()) == 37


def test_breach_escalates_exactly_once_across_processes(
    store: TicketStore, env: dict[str, str], clock: Clock, pool: Pool, manager: SyncManager
) -> None:
    tickets = [store.create(complaint(kind="emergency", summary=f"井盖丢失{i}")) for i in range(6)]
    later = (clock.now + timedelta(hours=30)).isoformat()
    barrier = manager.Barrier(3)
    results = pool.starmap(workers.escalate, [(env, later, barrier)] * 3, chunksize=1)
    escalated = [n for batch in results for n in batch]
    assert sorted(escalated) == sorted(t.number for t in tickets)
    for ticket in tickets:
        actions = [e["action"] for e in store.history(ticket.number)]
        assert actions.count("escalate") == 1
