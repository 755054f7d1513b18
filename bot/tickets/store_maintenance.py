"""Maintenance: what runs over all tickets on a schedule or on an operator's command.

督办 of overdue tickets (the SLA check), verifying the audit trail, purging
personal data past its retention, re-encrypting with a new key. Each walks the
tickets one transaction per ticket through :class:`~bot.tickets.store_core.StoreCore`,
so it can run beside the live system and from several processes at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import or_, select, update
from sqlalchemy.engine import Row

from bot.tickets import lifecycle, messages
from bot.tickets.audit import verify_chain
from bot.tickets.errors import ConflictError
from bot.tickets.lifecycle import Action
from bot.tickets.models import Actor, Status, TicketView
from bot.tickets.numbers import format_number
from bot.tickets.schema import counters, events, resolved_contacts, routing_corrections, tickets
from bot.tickets.store_core import StoreCore
from bot.tickets.times import aware, to_db

if TYPE_CHECKING:
    from bot.tickets.store import TicketStore


def _missing_numbers(issued: Mapping[str, int], numbers: list[str]) -> list[str]:
    """Ticket numbers handed out but no longer present: a whole ticket was deleted.

    Numbers are drawn in the creating transaction, so a rolled-back creation
    leaves no gap; every number from 1 to the day's counter must exist.
    """
    present: dict[str, set[int]] = {}
    for number in numbers:
        day, _, counter = number.rpartition("-")
        if counter.isdigit():
            present.setdefault(day, set()).add(int(counter))
    problems = []
    for day, last in sorted(issued.items()):
        for missing in sorted(set(range(1, last + 1)) - present.get(day, set())):
            problems.append(
                f"{format_number('', day, missing)}: ticket was issued but is missing (deleted)"
            )
    return problems


class Maintenance(StoreCore):
    """SLA escalation, audit verification, retention and key rotation."""

    def escalate_overdue(self, now: datetime | None = None) -> list[TicketView]:
        """督办 every running ticket past its deadline, once per deadline.

        Safe to run from several processes at once: the version check lets only
        one escalation of a ticket through.
        """
        now = now or self._now()
        stmt = select(tickets.c.number).where(
            tickets.c.status.in_([s.value for s in lifecycle.ACTIVE]),
            tickets.c.paused_at.is_(None),
            tickets.c.escalated_at.is_(None),
            tickets.c.deadline < to_db(now),
        )
        with self._read() as conn:
            numbers = list(conn.execute(stmt).scalars())
        escalated = []
        system = Actor.system()
        for number in numbers:
            try:
                with self._write() as conn:
                    row = self._load(conn, number)
                    if (
                        row.escalated_at is not None
                        or row.paused_at is not None
                        or aware(row.deadline) >= now
                        or Status(row.status) not in lifecycle.ACTIVE
                    ):
                        continue
                    target = lifecycle.check(Action.ESCALATE, Status(row.status), system, None)
                    overdue = now - aware(row.deadline)
                    row = self._record(
                        conn,
                        row,
                        system,
                        Action.ESCALATE,
                        to=target,
                        reason="sla breach",
                        payload={
                            "deadline": aware(row.deadline).isoformat(),
                            "overdue_hours": round(overdue.total_seconds() / 3600, 2),
                            "department": row.department,
                        },
                        values={"escalated_at": to_db(now)},
                        now=max(now, self._now()),
                    )
                    escalated.append(self._view(conn, row))
            except ConflictError:
                continue
        return escalated

    def verify_audit(self) -> list[str]:
        """Recompute every chain; problems name the first broken event of each ticket.

        Also: fields of a ticket row edited outside the store (against the keyed
        snapshot of its newest event), checkpointed heads no longer in the
        database (history rewritten or cut), whole tickets deleted.
        """
        problems: list[str] = []
        with self._read() as conn:
            heads = {r.id: r for r in conn.execute(select(tickets))}
            numbers = [r.number for r in heads.values()]
            found: dict[str, dict[int, str]] = {}
            rows = conn.execute(select(events).order_by(events.c.ticket_id, events.c.seq))
            current: int | None = None
            chain: list[Mapping[str, Any]] = []

            def flush() -> None:
                if current is None:
                    return
                head = heads.pop(current, None)
                if head is None:
                    problems.append(f"events of a deleted ticket (id {current})")
                    return
                found[head.number] = {e["seq"]: e["hash"] for e in chain}
                problems.extend(
                    verify_chain(
                        head.number,
                        chain,
                        head=head.last_event_hash,
                        count=head.event_count,
                        status=head.status,
                        key=self.audit_key,
                        current=dict(head._mapping),
                    )
                )

            for row in rows:
                if row.ticket_id != current:
                    flush()
                    current, chain = row.ticket_id, []
                chain.append(row._mapping)
            flush()
            issued = {r.day: r.last for r in conn.execute(select(counters))}
        for head in heads.values():
            if head.event_count:
                problems.append(f"{head.number}: all {head.event_count} events were deleted")
        reported = {p.split(" ", 1)[0].rstrip(":") for p in problems}
        for number, (seq, digest) in sorted(self.checkpoints.heads().items()):
            stored = found.get(number, {}).get(seq)
            if number in reported or (stored is None and number not in numbers):
                # one finding per ticket; a missing number is reported below (or the
                # checkpoint file is shared with another database)
                continue
            if stored != digest:
                problems.append(
                    f"{number}: checkpointed event #{seq} ({digest[:12]}) is "
                    + ("missing" if stored is None else f"now {stored[:12]}")
                    + f" in the database — history was rewritten or cut ({self.checkpoints.path})"
                )
        problems.extend(_missing_numbers(issued, numbers))
        return problems

    def purge(
        self,
        *,
        days: int | None = None,
        now: datetime | None = None,
        actor: Actor | None = None,
        place_label: Callable[[str | None, str], str | None] | None = None,
    ) -> list[str]:
        """Drop personal data and free text of tickets closed over ``days`` ago.

        What stays is the anonymous record: number, kind, channel, category,
        department, status, dates, the rating score, the public note, the audit
        chain (whose free text lives beside it and is emptied here: the chain
        covers only its HMAC, so it stays verifiable) and, when ``place_label``
        is given, a coarse label for the place (the district, for statistics).
        Routing corrections lose their text; resolved contacts, Rasa
        conversations and the texts of live sessions (在线会话) that ended
        before the cutoff are emptied and deleted as well.
        """
        actor = actor or Actor.system()
        days = self.settings.ticket_retention_days if days is None else days
        now = now or self._now()
        cutoff = to_db(now - timedelta(days=days))
        stmt = select(tickets.c.number).where(
            tickets.c.status.in_([Status.CLOSED.value, Status.MERGED.value]),
            tickets.c.closed_at <= cutoff,
            tickets.c.purged_at.is_(None),
        )
        with self._read() as conn:
            numbers = list(conn.execute(stmt).scalars())
        purged = []
        for number in numbers:
            try:
                with self._write() as conn:
                    row = self._load(conn, number)
                    if row.purged_at is not None:
                        continue
                    lifecycle.check(Action.PURGE, Status(row.status), actor, row.department)
                    when = self._now()
                    row = self._record(
                        conn,
                        row,
                        actor,
                        Action.PURGE,
                        reason=f"retention {days} days",
                        payload={"fields": ["phone", "id_number", "name", "sender_id", "place",
                                            "free text", "audit content"]},
                        values=self._purged_values(row, when, place_label),
                        now=when,
                    )
                    conn.execute(
                        update(events).where(events.c.ticket_id == row.id).values(content=None)
                    )
                    conn.execute(
                        update(routing_corrections)
                        .where(routing_corrections.c.ticket_id == row.id)
                        .values(text="")
                    )
            except ConflictError:
                continue
            purged.append(number)
        with self._write() as conn:
            conn.execute(
                update(resolved_contacts)
                .where(resolved_contacts.c.created_at <= cutoff, resolved_contacts.c.summary != "")
                .values(summary="", source=None, agent=None)
            )
        self.purge_conversations(now - timedelta(days=days))
        from bot.tickets.live import LiveStore  # live sessions stand on this store

        # this class is only ever a part of TicketStore, which LiveStore is given
        LiveStore(cast("TicketStore", self)).purge(now - timedelta(days=days))
        return purged

    @staticmethod
    def _purged_values(
        row: Row, when: datetime, place_label: Callable[[str | None, str], str | None] | None
    ) -> dict[str, Any]:
        return {
            "phone_enc": None,
            "phone_index": None,
            "id_number_enc": None,
            "name_enc": None,
            "sender_id": None,
            "source": None,
            "summary": messages.PURGED_TEXT,
            "description": "",
            "place": place_label(row.place, row.summary) if place_label else None,
            "occurred": None,
            "reply": None,
            "rating_comment": None,
            "transcript": "[]",
            "attachments": "[]",
            "facts": "{}",
            "idempotency_key": None,
            "purged_at": to_db(when),
        }

    def purge_conversations(self, before: datetime) -> int:
        """Delete Rasa conversation events older than ``before`` (raw text, slots)."""
        from bot.tickets.retention import purge_tracker

        return purge_tracker(self.settings.tracker_store_url, before)

    def rotate_keys(self, actor: Actor | None = None) -> int:
        """Re-encrypt every personal field with the newest key; returns tickets touched."""
        actor = actor or Actor.system()
        enc = (tickets.c.phone_enc, tickets.c.id_number_enc, tickets.c.name_enc)
        stmt = select(tickets.c.number).where(or_(*(c.is_not(None) for c in enc)))
        with self._read() as conn:
            numbers = list(conn.execute(stmt).scalars())
        count = 0
        for number in numbers:
            for _attempt in range(5):
                try:
                    self._change(
                        number,
                        actor,
                        Action.REKEY,
                        values=lambda row, now: {
                            "phone_enc": self.cipher.rotate(row.phone_enc),
                            "id_number_enc": self.cipher.rotate(row.id_number_enc),
                            "name_enc": self.cipher.rotate(row.name_enc),
                        },
                    )
                except ConflictError:
                    continue
                count += 1
                break
        return count
