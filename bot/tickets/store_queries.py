"""Queries: reading tickets, their history and the dispatcher's lists, always masked.

A citizen reads only their own ticket; department staff list only their
department's; a stranger with a number learns :meth:`Queries.public_status`.
:meth:`Queries.find` is the read side for code that is not a ticket's own page
(Open311, exports). Aggregates over many tickets for supervision, metrics and
the console's dashboard are in :mod:`bot.tickets.queries`, which returns rows,
not views. The one write here is the audit of a full-phone-number search.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.engine import Row

from bot.privacy import phone_digits, search_form
from bot.tickets import lifecycle, messages
from bot.tickets.audit import decode_payload, snapshot
from bot.tickets.errors import ConflictError, InvalidInput, PermissionDenied
from bot.tickets.lifecycle import Action
from bot.tickets.models import Actor, Role, Status, TicketView
from bot.tickets.numbers import normalize_ticket_number
from bot.tickets.schema import duplicate_links, events, routing_corrections, tickets
from bot.tickets.store_core import LOOKS, StoreCore
from bot.tickets.times import aware, to_db


class Queries(StoreCore):
    """Reading tickets (``list`` is a method here: annotations say ``builtins.list``)."""

    def get(self, number: str, actor: Actor | None = None) -> TicketView:
        """The ticket; with a citizen ``actor``, only if it is theirs (PermissionDenied).

        Staff callers pass no actor (the console checks roles itself); the chat
        passes the citizen, so a stranger who types a number learns nothing but
        :meth:`public_status`.
        """
        with self._read() as conn:
            row = self._load(conn, number)
            if actor is not None and actor.role is Role.CITIZEN and row.sender_id != actor.name:
                raise PermissionDenied(messages.NOT_OWNER)
            return self._view(conn, row)

    def public_status(self, number: str) -> tuple[str, Status, bool]:
        """(number, status, has an owner): all the public may learn from a ticket number."""
        with self._read() as conn:
            row = self._load(conn, number)
            return row.number, Status(row.status), row.sender_id is not None

    def list(
        self,
        *,
        status: Status | str | None = None,
        department: str | None = None,
        sender_id: str | None = None,
        channel: str | None = None,
        query: str | None = None,
        limit: int | None = None,
        actor: Actor | None = None,
    ) -> list[TicketView]:
        """Newest first. Department staff see only their department's tickets."""
        stmt = select(tickets)
        if actor is not None:
            if actor.role is Role.DEPARTMENT:
                if department is not None and department != actor.department:
                    raise PermissionDenied(
                        messages.OTHER_DEPARTMENT.format(
                            actor=actor.name,
                            actor_department=actor.department,
                            department=department,
                        )
                    )
                department = actor.department or ""
            elif actor.role is Role.CITIZEN:
                if sender_id not in (None, actor.name):
                    raise PermissionDenied(messages.NOT_OWNER)
                sender_id = actor.name
        if status is not None:
            try:
                stmt = stmt.where(tickets.c.status == Status(status).value)
            except ValueError as exc:
                raise InvalidInput(f"unknown status {status} / 未知状态 {status}") from exc
        if department is not None:
            stmt = stmt.where(tickets.c.department == department)
        if sender_id is not None:
            stmt = stmt.where(tickets.c.sender_id == sender_id)
        if channel is not None:
            stmt = stmt.where(tickets.c.channel == channel)
        # staff typing a full phone number find that caller's tickets through the keyed
        # index, and each ticket found records the lookup (the number stays unsearchable)
        by_phone = (
            self._phone_index(phone_digits(query, strict=True))
            if query and actor is not None and actor.role in lifecycle.STAFF
            else None
        )
        if query:
            number = normalize_ticket_number(query, self.settings.ticket_prefix)
            needle = search_form(query.strip())
            needle = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace(
                "_", "\\_") + "%"
            conditions = [
                # masked text only (see _search_text): a full name finds nothing
                tickets.c.search_text.like(needle, escape="\\"),
                func.lower(tickets.c.number).like(needle, escape="\\"),
            ]
            if number:
                conditions.append(tickets.c.number == number)
            if by_phone:
                conditions.append(tickets.c.phone_index == by_phone)
            stmt = stmt.where(or_(*conditions))
        stmt = stmt.order_by(tickets.c.created_at.desc(), tickets.c.id.desc())
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._read() as conn:
            rows = conn.execute(stmt).all()
            views = self._views(conn, rows)
        if by_phone and actor is not None:
            found = [r.number for r in rows if r.phone_index == by_phone]
            self._record_phone_search(found, actor)
            if found:
                views = [self.get(v.number) if v.number in found else v for v in views]
        return views

    def find(
        self,
        *,
        numbers: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        categories: Sequence[str] | None = None,
        statuses: Iterable[Status | str] | None = None,
        channels: Sequence[str] | None = None,
        published: bool | None = None,
        limit: int | None = None,
    ) -> builtins.list[TicketView]:
        """Tickets matching every given filter, newest first, read in one transaction.

        The read side for code that is not a ticket's own page (Open311, exports):
        filters in SQL and one query for the whole page, instead of selecting
        numbers and calling :meth:`get` per row. ``published`` keeps only what the
        public may see of tickets filed elsewhere: those with a public note, or
        filed through one of ``channels`` (with ``channels`` and ``published``
        both given, either is enough). Views are masked as everywhere else.
        """
        t = tickets.c
        stmt = select(tickets)
        if numbers is not None:
            canonical = [normalize_ticket_number(n, self.settings.ticket_prefix) or n.strip()
                         for n in numbers]
            stmt = stmt.where(t.number.in_(canonical))
        if since is not None:
            stmt = stmt.where(t.created_at >= to_db(since))
        if until is not None:
            stmt = stmt.where(t.created_at <= to_db(until))
        if categories is not None:
            stmt = stmt.where(t.category.in_(list(categories)))
        if statuses is not None:
            stmt = stmt.where(t.status.in_([Status(s).value for s in statuses]))
        if published and channels is not None:
            stmt = stmt.where(or_(t.channel.in_(list(channels)), t.public_note.is_not(None)))
        elif published:
            stmt = stmt.where(t.public_note.is_not(None))
        elif channels is not None:
            stmt = stmt.where(t.channel.in_(list(channels)))
        stmt = stmt.order_by(t.created_at.desc(), t.id.desc())
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._read() as conn:
            return self._views(conn, conn.execute(stmt).all())

    def _record_phone_search(self, numbers: builtins.list[str], actor: Actor) -> None:
        """Each ticket found by a full phone number records who looked it up (not the number)."""
        for number in numbers:
            for _attempt in range(5):
                try:
                    with self._write() as conn:
                        row = self._load(conn, number)
                        lifecycle.check(
                            Action.CONTACT_SEARCHED, Status(row.status), actor, row.department
                        )
                        self._record(conn, row, actor, Action.CONTACT_SEARCHED)
                    break
                except ConflictError:
                    continue

    def due(
        self, within_hours: float = 24, now: datetime | None = None
    ) -> builtins.list[TicketView]:
        """Running clocks ending within ``within_hours`` (or already ended), soonest first."""
        now = now or self._now()
        limit = to_db(now + timedelta(hours=within_hours))
        stmt = (
            select(tickets)
            .where(
                tickets.c.status.in_([s.value for s in lifecycle.ACTIVE]),
                tickets.c.paused_at.is_(None),
                tickets.c.deadline <= limit,
            )
            .order_by(tickets.c.deadline, tickets.c.id)
        )
        with self._read() as conn:
            return self._views(conn, conn.execute(stmt).all())

    def follow_up_due(self, view: TicketView) -> datetime | None:
        """When the 回访 call is due: the next working day(s) after the reply."""
        if view.replied_at is None:
            return None
        return self.sla.calendar.next_working_day_end(
            view.replied_at.astimezone(self.tz),
            self.sla.follow_up_working_days,
            self.sla.end_of_day,
        )

    def history(self, number: str) -> builtins.list[dict[str, Any]]:
        with self._read() as conn:
            row = self._load(conn, number)
            rows = conn.execute(
                select(events).where(events.c.ticket_id == row.id).order_by(events.c.seq)
            ).all()
        return [
            {
                "seq": e.seq,
                "action": e.action,
                "actor_role": e.actor_role,
                "actor_name": e.actor_name,
                "actor_department": e.actor_department,
                "at": aware(e.at).isoformat(),
                "from_status": e.from_status,
                "to_status": e.to_status,
                "reason": e.reason,
                # the free text beside the chain, back in place for readers (empty once purged)
                "payload": {**decode_payload(e.payload), **decode_payload(e.content or "")},
                "hash": e.hash,
            }
            for e in rows
        ]

    def changes_since(self, number: str, version: int) -> builtins.list[dict[str, Any]]:
        """The changes a form opened at ``version`` has not seen, oldest first.

        Entries are :meth:`history` entries, plus ``version`` (the ticket's version
        after the event). An event's keyed snapshot (``state``) holds a digest of
        every field, the version among them: the events newer than ``version`` are
        found by comparing that digest, exactly, without storing versions twice.
        Looks (:data:`LOOKS`) that did not move the version are left out.
        """
        with self._read() as conn:
            row = self._load(conn, number)
            if row.version <= version:
                return []
            digests = {
                snapshot(self.audit_key, {"version": v})["version"]: v
                for v in range(max(version, 0), row.version + 1)
            }
            newer: list[tuple[int, Row]] = []
            for event in conn.execute(
                select(events).where(events.c.ticket_id == row.id).order_by(events.c.seq.desc())
            ):
                state = json.loads(event.state) if event.state else {}
                after = digests.get(state.get("version", ""))
                if after is None or after <= version:
                    break
                newer.append((after, event))
        newer.reverse()
        found, seen = [], version
        for after, event in newer:
            if after > seen or event.action not in {a.value for a in LOOKS}:
                found.append(
                    {
                        "seq": event.seq,
                        "version": after,
                        "action": event.action,
                        "actor_role": event.actor_role,
                        "actor_name": event.actor_name,
                        "actor_department": event.actor_department,
                        "at": aware(event.at).isoformat(),
                        "from_status": event.from_status,
                        "to_status": event.to_status,
                        "reason": event.reason,
                        "payload": {
                            **decode_payload(event.payload),
                            **decode_payload(event.content or ""),
                        },
                    }
                )
            seen = after
        return found

    def probable_duplicates(self) -> builtins.list[dict[str, Any]]:
        """Open tickets with a probable duplicate, for the dispatcher to merge or ignore."""
        new = tickets.alias("new")
        old = tickets.alias("old")
        stmt = (
            select(
                new.c.number, old.c.number, duplicate_links.c.score, duplicate_links.c.created_at
            )
            .join(new, new.c.id == duplicate_links.c.ticket_id)
            .join(old, old.c.id == duplicate_links.c.candidate_id)
            .where(new.c.status.in_([s.value for s in lifecycle.ACTIVE]))
            .order_by(duplicate_links.c.created_at.desc(), duplicate_links.c.score.desc())
        )
        with self._read() as conn:
            return [
                {
                    "ticket": ticket,
                    "probable_duplicate_of": primary,
                    "score": score,
                    "created_at": aware(at).isoformat(),
                }
                for ticket, primary, score, at in conn.execute(stmt)
            ]

    def routing_corrections(self) -> builtins.list[dict[str, Any]]:
        """Dispatcher corrections of the router's category, for retraining (text is masked)."""
        stmt = (
            select(routing_corrections, tickets.c.number)
            .join(tickets, tickets.c.id == routing_corrections.c.ticket_id)
            .order_by(routing_corrections.c.id)
        )
        with self._read() as conn:
            return [
                {
                    "number": r.number,
                    "text": r.text,
                    "predicted": r.predicted,
                    "predicted_confidence": r.predicted_confidence,
                    "corrected": r.corrected,
                    "department": r.department,
                    "actor": r.actor,
                    "at": aware(r.at).isoformat(),
                }
                for r in conn.execute(stmt)
            ]

    def departments(self) -> builtins.list[str]:
        return self.routing.departments
