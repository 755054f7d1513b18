"""Contacts: reaching the citizen, and contacts that never became a ticket.

Three things about the person behind a contact rather than a ticket's work:
contacts settled on the spot (an inquiry answered on the call: counted for
statistics, no case, nothing personal kept), the decrypted contact details
staff open to call back (every opening audited), and a chat citizen claiming a
hotline or Open311 ticket by proving its phone number (every try audited, a
limited number of tries).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from bot.privacy import mask_text
from bot.tickets import lifecycle, messages
from bot.tickets.errors import InvalidInput, PermissionDenied
from bot.tickets.lifecycle import Action
from bot.tickets.models import KINDS, Actor, Contact, Status, TicketView
from bot.tickets.schema import events, resolved_contacts, tickets
from bot.tickets.store_core import StoreCore
from bot.tickets.times import local, to_db

#: wrong phone numbers a ticket takes before it refuses every claim (staff can still help)
CLAIM_ATTEMPTS = 5

#: keys per ``IN (...)`` list, well under every database's bound-parameter limit
_KEY_CHUNK = 500


@dataclass(frozen=True)
class ResolvedContact:
    """A contact settled on the spot (an inquiry answered on the call): statistics only.

    It is not a case: no number, department, clock or audit chain, and no contact
    details, because nobody calls back. ``summary`` is masked before it is stored.
    """

    channel: str
    idempotency_key: str
    summary: str
    kind: str = "inquiry"
    source: str | None = None
    intent: str | None = None
    category: str | None = None
    category_confidence: float | None = None
    service: str | None = None
    agent: str | None = None
    started_at: datetime | None = None


class Contacts(StoreCore):
    """Resolved contacts, contact details and claims."""

    def seen_keys(self, keys: Iterable[str]) -> set[str]:
        """Those of ``keys`` already used by a ticket or a resolved contact.

        Lets a bulk importer skip known items before doing any work for them.
        """
        wanted = sorted({key for key in keys if key})
        seen: set[str] = set()
        with self._read() as conn:
            for i in range(0, len(wanted), _KEY_CHUNK):
                chunk = wanted[i : i + _KEY_CHUNK]
                for table in (tickets, resolved_contacts):
                    column = table.c.idempotency_key
                    seen.update(conn.execute(select(column).where(column.in_(chunk))).scalars())
        return seen

    def record_resolved(self, contacts: Sequence[ResolvedContact]) -> list[str]:
        """Record contacts settled on the spot, in one transaction; return the keys recorded.

        Keys already used (by a ticket or an earlier contact) are skipped, so a
        re-import changes nothing. Should two importers race, the loser retries
        one by one and skips what the winner wrote.
        """
        for contact in contacts:
            if contact.kind not in KINDS:
                raise InvalidInput(messages.BAD_KIND.format(kind=contact.kind))
            if not contact.idempotency_key:
                raise InvalidInput("resolved contact without idempotency key")
        fresh: dict[str, ResolvedContact] = {}
        for contact in contacts:
            fresh.setdefault(contact.idempotency_key, contact)
        for key in self.seen_keys(fresh):
            del fresh[key]
        if not fresh:
            return []
        now = to_db(self._now())
        rows = [
            {
                "idempotency_key": c.idempotency_key,
                "channel": c.channel,
                "source": c.source,
                "kind": c.kind,
                "intent": c.intent,
                "category": c.category,
                "category_confidence": c.category_confidence,
                "service": c.service,
                "summary": mask_text(c.summary),
                "agent": c.agent,
                "started_at": to_db(c.started_at) if c.started_at else None,
                "created_at": now,
            }
            for c in fresh.values()
        ]
        try:
            with self._write() as conn:
                conn.execute(insert(resolved_contacts), rows)
            return list(fresh)
        except IntegrityError:
            recorded: list[str] = []
            for row in rows:
                if self.seen_keys([str(row["idempotency_key"])]):
                    continue
                try:
                    with self._write() as conn:
                        conn.execute(insert(resolved_contacts).values(**row))
                except IntegrityError:
                    continue
                recorded.append(str(row["idempotency_key"]))
            return recorded

    def resolved(
        self, *, channel: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Resolved contacts, newest first, as JSON-able dicts (nothing personal)."""
        stmt = select(resolved_contacts)
        if channel is not None:
            stmt = stmt.where(resolved_contacts.c.channel == channel)
        stmt = stmt.order_by(resolved_contacts.c.created_at.desc(), resolved_contacts.c.id.desc())
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._read() as conn:
            return [
                {
                    "channel": r.channel,
                    "source": mask_text(r.source) if r.source else None,
                    "kind": r.kind,
                    "intent": r.intent,
                    "category": r.category,
                    "category_confidence": r.category_confidence,
                    "service": r.service,
                    "summary": r.summary,
                    "agent": r.agent,
                    "started_at": local(r.started_at, self.tz).isoformat()  # type: ignore[union-attr]
                    if r.started_at
                    else None,
                    "created_at": local(r.created_at, self.tz).isoformat(),  # type: ignore[union-attr]
                }
                for r in conn.execute(stmt)
            ]

    def claim(self, number: str, phone: str, actor: Actor) -> TicketView:
        """Give a ticket filed with no chat identity to the citizen who proves its phone.

        Hotline and Open311 tickets carry the caller's phone number (encrypted);
        a chat citizen who types the same number becomes the owner, so the reply
        and the 回访 then reach them on that channel. Every try is in the audit
        chain; after :data:`CLAIM_ATTEMPTS` wrong numbers the ticket takes no
        more tries, so a stranger cannot guess their way in.
        """
        digits = "".join(ch for ch in phone if ch.isdigit())
        with self._write() as conn:
            row = self._load(conn, number)
            lifecycle.check(Action.CLAIM, Status(row.status), actor, row.department,
                            owner=row.sender_id)
            refused = conn.execute(
                select(func.count())
                .select_from(events)
                .where(events.c.ticket_id == row.id, events.c.action == Action.CLAIM_REFUSED.value)
            ).scalar_one()
            if refused >= CLAIM_ATTEMPTS:
                raise PermissionDenied(messages.CLAIM_LOCKED.format(number=row.number))
            known, _, _ = self._known(row)
            expected = "".join(ch for ch in known or "" if ch.isdigit())
            if expected and digits and hmac.compare_digest(digits.encode(), expected.encode()):
                row = self._record(conn, row, actor, Action.CLAIM, values={"sender_id": actor.name})
                return self._view(conn, row)
            # committed before refusing: the failed try counts towards the limit
            self._record(conn, row, actor, Action.CLAIM_REFUSED)
        raise PermissionDenied(messages.CLAIM_REFUSED.format(number=row.number))

    def contact(self, number: str, actor: Actor) -> Contact:
        """Decrypted contact details for staff calling back; the access itself is audited."""
        with self._write() as conn:
            row = self._load(conn, number)
            lifecycle.check(Action.CONTACT_VIEWED, Status(row.status), actor, row.department)
            self._record(conn, row, actor, Action.CONTACT_VIEWED, payload={})
            return Contact(
                phone=self.cipher.decrypt(row.phone_enc),
                id_number=self.cipher.decrypt(row.id_number_enc),
                name=self.cipher.decrypt(row.name_enc),
            )
