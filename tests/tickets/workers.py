"""Functions run in separate OS processes (multiprocessing spawn) by the concurrency tests."""

from __future__ import annotations

from typing import Any

from bot.settings import load_settings
from bot.tickets import Actor, ConflictError, Role, TicketStore
from tests.tickets.helpers import complaint


def _store(env: dict[str, str]) -> TicketStore:
    return TicketStore(env["DATABASE_URL"], upgrade=False, settings=load_settings(env))


def note_with_version(env: dict[str, str], number: str, name: str, barrier: Any) -> str:
    """Read the ticket, wait for the other process, then write based on what was read."""
    store = _store(env)
    seen = store.get(number).version
    barrier.wait(timeout=30)
    try:
        store.add_note(
            number, f"note by {name}", Actor(Role.DISPATCHER, name), expected_version=seen
        )
    except ConflictError:
        return "conflict"
    finally:
        store.dispose()
    return "ok"


def hammer_notes(
    env: dict[str, str], number: str, name: str, times: int, barrier: Any
) -> list[str]:
    store = _store(env)
    barrier.wait(timeout=30)
    results = []
    for i in range(times):
        try:
            store.add_note(number, f"{name} {i}", Actor(Role.DISPATCHER, name))
            results.append("ok")
        except ConflictError:
            results.append("conflict")
    store.dispose()
    return results


def create_many(env: dict[str, str], name: str, times: int, barrier: Any) -> list[str]:
    store = _store(env)
    barrier.wait(timeout=30)
    numbers = [
        store.create(complaint(summary=f"{name} 第{i}件 路灯不亮", place=f"{name}路{i}号")).number
        for i in range(times)
    ]
    numbers.append(store.create(complaint(idempotency_key="shared-key")).number)
    store.dispose()
    return numbers


def escalate(env: dict[str, str], now_iso: str, barrier: Any) -> list[str]:
    from datetime import datetime

    store = _store(env)
    barrier.wait(timeout=30)
    numbers = [t.number for t in store.escalate_overdue(now=datetime.fromisoformat(now_iso))]
    store.dispose()
    return numbers
