"""The store's core: engine, clock, transactions and the one way a ticket row changes.

Every change runs in one transaction that (1) reads the ticket, (2) asks the
state machine (``lifecycle.check``) whether the actor may do it, (3) updates
the row ``WHERE version = :v`` and (4) appends a hash-chained audit event
(:meth:`StoreCore._record`, :meth:`StoreCore._change`). A zero row count means
another process changed the ticket first: the caller gets :class:`ConflictError`
and nothing is written, so no update is ever lost. The writes, queries, contacts
and maintenance modules all stand on this class, so none of them opens a
transaction or appends an event any other way.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import DBAPIError, IntegrityError

from bot.privacy import phone_digits
from bot.settings import Settings, get_settings
from bot.tickets import db, lifecycle, messages
from bot.tickets.audit import (
    CheckpointLog,
    canonical_json,
    event_hash,
    keyed_digest,
    snapshot,
    split_content,
)
from bot.tickets.crypto import PiiCipher
from bot.tickets.errors import ConflictError, TicketError, TicketNotFound
from bot.tickets.lifecycle import Action
from bot.tickets.models import Actor, Role, Status, TicketView
from bot.tickets.numbers import normalize_ticket_number
from bot.tickets.routing import RoutingTable
from bot.tickets.schema import events, tickets
from bot.tickets.sla import SlaPolicy
from bot.tickets.store_views import Views, _mask_deep
from bot.tickets.times import to_db

UTC = timezone.utc
#: audit events that record a look (or a refused claim), not a change: they extend
#: the chain like any event but leave ``version`` and ``updated_at`` alone, so a
#: form opened before someone revealed the phone number still applies
LOOKS = frozenset({Action.CONTACT_VIEWED, Action.CONTACT_SEARCHED, Action.CLAIM_REFUSED})
#: times one event is re-chained onto a row that only gained events meanwhile
RECHAIN_ATTEMPTS = 5

#: audit heads written by the current write transaction (checkpointed after commit)
_PENDING_HEADS: contextvars.ContextVar[list[tuple[str, int, str]] | None] = contextvars.ContextVar(
    "citizenbot_audit_heads", default=None
)
#: under the name it always had, so log filters and alerts on it keep working
log = logging.getLogger("bot.tickets.store")

#: PostgreSQL SQLSTATEs meaning "two transactions collided; retrying may succeed"
_COLLISIONS = {"40001", "40P01", "55P03"}


def _translate(exc: DBAPIError) -> TicketError:
    """Database failures as store errors, so callers catch one exception family."""
    if getattr(exc.orig, "pgcode", None) in _COLLISIONS:
        return ConflictError(f"concurrent update, retry / 并发冲突，请重试: {exc.orig}")
    return TicketError(f"ticket store unavailable / 工单库暂不可用: {exc.orig}")


class StoreCore(Views):
    """Connection, settings, keys and clock, and the audited change of one row."""

    def __init__(
        self,
        url: str | None = None,
        upgrade: bool = True,
        *,
        settings: Settings | None = None,
        pii_keys: list[str] | None = None,
        routing: RoutingTable | None = None,
        sla: SlaPolicy | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.url = url or self.settings.database_url
        self.engine = db.make_engine(self.url)
        if upgrade:
            try:
                db.upgrade(self.engine)
            except DBAPIError as exc:
                self.engine.dispose()
                raise _translate(exc) from exc
        self.cipher = PiiCipher(pii_keys or self.settings.effective_pii_keys)
        #: HMAC key of the audit trail, outside the database (var/audit_key.secret or AUDIT_KEY)
        self.audit_key = self.settings.effective_audit_key
        #: heads of the chains, appended outside the database after each commit
        self.checkpoints = CheckpointLog(self.settings.effective_audit_checkpoint_file)
        self.routing = routing or RoutingTable.load()
        self.sla = sla or SlaPolicy.load(
            timezone=self.settings.timezone, working_hours=self.settings.working_hours
        )
        self.tz = ZoneInfo(self.settings.timezone)
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        if upgrade:
            self._backfill_search()

    def _backfill_search(self, batch: int = 500) -> int:
        """Fill ``search_text`` and ``phone_index`` of rows written before they existed.

        Derived columns, not part of the record: no audit event, and another
        process filling the same rows at once writes the same values. A phone
        that cannot be decrypted gets an empty index (never matched, not retried).
        """
        done = 0
        stale = or_(
            tickets.c.search_text.is_(None),
            and_(tickets.c.phone_enc.is_not(None), tickets.c.phone_index.is_(None)),
        )
        while True:
            with self._write() as conn:
                rows = conn.execute(select(tickets).where(stale).limit(batch)).all()
                for row in rows:
                    known = self._known(row)
                    conn.execute(
                        update(tickets)
                        .where(tickets.c.id == row.id)
                        .values(
                            search_text=self._search_text(row, {}, self._masker(row, known))
                            or row.search_text,
                            phone_index=self._phone_index(known[0]) or "",
                        )
                    )
            done += len(rows)
            if len(rows) < batch:
                return done

    def _phone_index(self, phone: str | None) -> str | None:
        """Keyed digest of a phone number's digits (``+86``, separators, full width ignored)."""
        digits = phone_digits(phone or "")
        if not digits:
            return None
        return keyed_digest(self.audit_key, "phone:" + digits)

    def dispose(self) -> None:
        """Close the engine's pooled connections."""
        self.engine.dispose()

    def _now(self) -> datetime:
        now = self.clock()
        if now.tzinfo is None:
            raise ValueError("the store clock must return aware datetimes")
        # microseconds are what both databases keep; the audit hash depends on it
        return now.astimezone(UTC)

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction; the audit heads it wrote are checkpointed once it committed."""
        heads: list[tuple[str, int, str]] = []
        token = _PENDING_HEADS.set(heads)
        try:
            with self.engine.connect() as conn:
                conn = conn.execution_options(**{db.WRITE: True})
                with conn.begin():
                    yield conn
        except TicketError:
            raise
        except IntegrityError:
            raise
        except DBAPIError as exc:
            raise _translate(exc) from exc
        finally:
            _PENDING_HEADS.reset(token)
        if heads:
            try:
                self.checkpoints.append(heads)
            except OSError as exc:  # the change is committed; say loudly that the anchor lags
                log.error("audit checkpoint not written to %s: %s", self.checkpoints.path, exc)

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except DBAPIError as exc:
            raise _translate(exc) from exc

    def _load(self, conn: Connection, number: str) -> Row:
        canonical = normalize_ticket_number(number, self.settings.ticket_prefix) or number.strip()
        row = conn.execute(select(tickets).where(tickets.c.number == canonical)).first()
        if row is None:
            raise TicketNotFound(messages.NOT_FOUND.format(number=canonical))
        return row

    def _record(
        self,
        conn: Connection,
        row: Row,
        actor: Actor,
        action: Action,
        *,
        to: Status | None = None,
        reason: str = "",
        payload: Mapping[str, Any] | None = None,
        values: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> Row:
        """Apply ``values`` to the row and append the audit event, or raise ConflictError.

        A change moves ``version`` on (what forms send back as ``expected_version``);
        a look (:data:`LOOKS`) only extends the chain. The row is updated ``WHERE
        version = :v AND event_count = :n``: when only looks came in between (same
        version, more events), nothing the caller read has changed, so the event is
        chained again onto the newer head instead of failing the caller's action.
        """
        at = to_db(now or self._now())
        look = action in LOOKS
        for _attempt in range(RECHAIN_ATTEMPTS):
            mask = self._masker(row)
            from_status = row.status
            to_status = row.status if look else (to or Status(row.status)).value
            chained, content = split_content(
                _mask_deep(dict(payload or {}), mask), self.audit_key
            )
            event = {
                "ticket_id": row.id,
                "seq": row.event_count + 1,
                "action": action.value,
                "actor_role": actor.role.value,
                "actor_name": self._actor_name(actor),
                "actor_department": actor.department,
                "at": at,
                "from_status": from_status if action is not Action.CREATE else None,
                "to_status": to_status,
                "reason": mask(reason),
                "payload": canonical_json(chained),
                "content": content,
                "prev_hash": row.last_event_hash,
            }
            changes = dict(values or {})
            search = self._search_text(row, changes, mask)
            if search is not None:
                changes["search_text"] = search
            if not look:
                changes.update(status=to_status, version=row.version + 1, updated_at=at)
            # every field as this event leaves the row, under the chain (audit.snapshot)
            event["state"] = canonical_json(snapshot(self.audit_key, {**row._mapping, **changes}))
            event["hash"] = event_hash(row.number, event, row.last_event_hash, self.audit_key)
            changes.update(event_count=row.event_count + 1, last_event_hash=event["hash"])
            result = conn.execute(
                update(tickets)
                .where(
                    and_(
                        tickets.c.id == row.id,
                        tickets.c.version == row.version,
                        tickets.c.event_count == row.event_count,
                    )
                )
                .values(**changes)
            )
            if result.rowcount == 1:
                break
            # Lock the row while re-reading it: an unlocked re-read can lose to the next
            # look again and again (two consoles revealing a phone while a colleague
            # saves a note ran out of attempts on PostgreSQL). SQLite ignores the lock;
            # it serialises writers anyway.
            fresh = conn.execute(
                select(tickets).where(tickets.c.id == row.id).with_for_update()
            ).one()
            if not look and fresh.version != row.version:
                raise ConflictError(
                    messages.CONFLICT.format(
                        number=row.number, expected=row.version, actual=fresh.version
                    )
                )
            row = fresh  # only events were added (or this is a look): chain onto the new head
        else:
            raise ConflictError(
                messages.CONFLICT.format(number=row.number, expected=row.version, actual="?")
            )
        try:
            conn.execute(insert(events).values(**event))
        except IntegrityError as exc:  # another writer appended the same seq
            raise ConflictError(
                messages.CONFLICT.format(number=row.number, expected=row.version, actual="?")
            ) from exc
        pending = _PENDING_HEADS.get()
        if pending is not None:
            pending.append((row.number, event["seq"], event["hash"]))
        return conn.execute(select(tickets).where(tickets.c.id == row.id)).one()

    def _actor_name(self, actor: Actor) -> str:
        """Staff by name (accountability); a citizen by a keyed pseudonym of their sender id.

        The trail outlives purge, and a WeChat openid or Telegram chat id is the
        citizen's identifier: the trail keeps ``citizen:<HMAC>`` instead, which
        whoever holds the audit key can match to a sender id, and nobody else can.
        """
        if actor.role is not Role.CITIZEN:
            return actor.name
        return "citizen:" + keyed_digest(self.audit_key, actor.name)[:24]

    def _change(
        self,
        number: str,
        actor: Actor,
        action: Action,
        *,
        reason: str = "",
        payload: Mapping[str, Any] | None = None,
        values: Callable[[Row, datetime], Mapping[str, Any]] | None = None,
        expected_version: int | None = None,
    ) -> TicketView:
        with self._write() as conn:
            row = self._load(conn, number)
            self._expect(row, expected_version)
            target = lifecycle.check(
                action,
                Status(row.status),
                actor,
                row.department,
                reason=reason,
                owner=row.sender_id,
            )
            now = self._now()
            row = self._record(
                conn,
                row,
                actor,
                action,
                to=target,
                reason=reason,
                payload=payload,
                values=values(row, now) if values else None,
                now=now,
            )
            return self._view(conn, row)

    @staticmethod
    def _expect(row: Row, expected_version: int | None) -> None:
        if expected_version is not None and row.version != expected_version:
            raise ConflictError(
                messages.CONFLICT.format(
                    number=row.number, expected=expected_version, actual=row.version
                )
            )
