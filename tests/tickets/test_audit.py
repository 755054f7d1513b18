"""Tamper evidence: any edited or deleted event breaks ``citizenbot audit verify``."""

from __future__ import annotations

from sqlalchemy import text

from bot.tickets import TicketStore
from tests.tickets.conftest import run_cli
from tests.tickets.helpers import CITIZEN, ENV_STAFF, complaint


def _prepare(store: TicketStore) -> str:
    ticket = store.create(complaint())
    store.start(ticket.number, ENV_STAFF)
    store.reply(ticket.number, "已处理", ENV_STAFF)
    store.rate(ticket.number, 5, True, "满意", CITIZEN)
    store.create(complaint(summary="另一件：路灯不亮", place="光明路"))
    return ticket.number


def _event_id(store: TicketStore, number: str, seq: int) -> int:
    with store.engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT e.id FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id "
                "WHERE t.number = :n AND e.seq = :s"
            ),
            {"n": number, "s": seq},
        ).scalar_one()


def test_intact_chains_verify(store: TicketStore, env: dict[str, str]) -> None:
    _prepare(store)
    assert store.verify_audit() == []
    code, out, err = run_cli(env, "audit", "verify")
    assert code == 0, err
    assert "intact" in out


def test_edited_event_is_named_by_the_cli(store: TicketStore, env: dict[str, str]) -> None:
    number = _prepare(store)
    event_id = _event_id(store, number, 3)
    with store.engine.begin() as conn:
        conn.execute(
            text("UPDATE ticket_events SET reason = 'nothing happened' WHERE id = :id"),
            {"id": event_id},
        )
    problems = store.verify_audit()
    assert len(problems) == 1 and f"{number} event #3 (id {event_id}" in problems[0]
    code, _out, err = run_cli(env, "audit", "verify")
    assert code == 1
    assert f"{number} event #3" in err and "altered" in err


def test_deleted_events_are_detected(store: TicketStore) -> None:
    number = _prepare(store)
    with store.engine.begin() as conn:
        conn.execute(
            text("DELETE FROM ticket_events WHERE id = :id"), {"id": _event_id(store, number, 2)}
        )
    [problem] = store.verify_audit()
    assert f"{number} event #3" in problem and "deleted" in problem


def test_deleting_the_newest_event_is_detected(store: TicketStore) -> None:
    number = _prepare(store)
    last = store.history(number)[-1]["seq"]
    with store.engine.begin() as conn:
        conn.execute(
            text("DELETE FROM ticket_events WHERE id = :id"), {"id": _event_id(store, number, last)}
        )
    [problem] = store.verify_audit()
    assert number in problem and "newest event" in problem


def test_status_edited_behind_the_stores_back(store: TicketStore) -> None:
    number = _prepare(store)
    with store.engine.begin() as conn:
        conn.execute(
            text("UPDATE tickets SET status = 'received' WHERE number = :n"), {"n": number}
        )
    [problem] = store.verify_audit()
    assert number in problem and "status" in problem


def test_deleting_a_whole_ticket_is_detected(store: TicketStore) -> None:
    number = _prepare(store)
    with store.engine.begin() as conn:
        ticket_id = conn.execute(
            text("SELECT id FROM tickets WHERE number = :n"), {"n": number}
        ).scalar_one()
        for table in ("ticket_events", "ticket_duplicate_links"):
            conn.execute(text(f"DELETE FROM {table} WHERE ticket_id = :t"), {"t": ticket_id})
        conn.execute(
            text("DELETE FROM ticket_duplicate_links WHERE candidate_id = :t"), {"t": ticket_id}
        )
        conn.execute(text("DELETE FROM tickets WHERE id = :t"), {"t": ticket_id})
    [problem] = store.verify_audit()
    assert number in problem and "missing" in problem
