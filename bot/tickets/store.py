"""TicketStore: the one place where tickets are created and changed.

Every change runs in one transaction that (1) reads the ticket, (2) asks the
state machine (``lifecycle.check``) whether the actor may do it, (3) updates
the row ``WHERE version = :v`` and (4) appends a hash-chained audit event. A
zero row count means another process changed the ticket first: the caller gets
:class:`ConflictError` and nothing is written, so no update is ever lost.
"""

from __future__ import annotations

import builtins
import contextlib
import contextvars
import hmac
import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import DBAPIError, IntegrityError

from bot.privacy import (
    mask_id_number,
    mask_name,
    mask_phone,
    mask_text,
    phone_digits,
    search_form,
)
from bot.settings import Settings, get_settings
from bot.tickets import db, lifecycle, messages
from bot.tickets.audit import (
    GENESIS,
    CheckpointLog,
    canonical_json,
    decode_payload,
    event_hash,
    keyed_digest,
    snapshot,
    split_content,
    verify_chain,
)
from bot.tickets.crypto import PiiCipher
from bot.tickets.duplicates import duplicate_score
from bot.tickets.errors import (
    ConflictError,
    InvalidInput,
    PermissionDenied,
    TicketError,
    TicketNotFound,
)
from bot.tickets.lifecycle import Action
from bot.tickets.models import KINDS, Actor, Contact, NewTicket, Role, Status, TicketView
from bot.tickets.numbers import format_number, next_number, normalize_ticket_number
from bot.tickets.routing import RoutingTable
from bot.tickets.schema import (
    counters,
    duplicate_links,
    events,
    resolved_contacts,
    routing_corrections,
    tickets,
)
from bot.tickets.sla import SlaPolicy
from bot.tickets.times import aware, local, to_db

UTC = timezone.utc
#: a probable duplicate without a known place must be nearly the same text
#: wrong phone numbers a ticket takes before it refuses every claim (staff can still help)
CLAIM_ATTEMPTS = 5
STRICT_DUPLICATE_THRESHOLD = 0.85
#: how many recent open tickets a new complaint is compared with
DUPLICATE_CANDIDATES = 500
DUPLICATE_KINDS = frozenset({"complaint", "report", "help", "emergency"})
#: audit events that record a look (or a refused claim), not a change: they extend
#: the chain like any event but leave ``version`` and ``updated_at`` alone, so a
#: form opened before someone revealed the phone number still applies
LOOKS = frozenset({Action.CONTACT_VIEWED, Action.CONTACT_SEARCHED, Action.CLAIM_REFUSED})
#: times one event is re-chained onto a row that only gained events meanwhile
RECHAIN_ATTEMPTS = 5

_OTHER = tickets.alias("other")

_stores: dict[str, TicketStore] = {}
#: audit heads written by the current write transaction (checkpointed after commit)
_PENDING_HEADS: contextvars.ContextVar[list[tuple[str, int, str]] | None] = contextvars.ContextVar(
    "citizenbot_audit_heads", default=None
)
log = logging.getLogger(__name__)
_stores_lock = threading.Lock()


Masker = Callable[[str], str]

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

#: PostgreSQL SQLSTATEs meaning "two transactions collided; retrying may succeed"
_COLLISIONS = {"40001", "40P01", "55P03"}


def _translate(exc: DBAPIError) -> TicketError:
    """Database failures as store errors, so callers catch one exception family."""
    if getattr(exc.orig, "pgcode", None) in _COLLISIONS:
        return ConflictError(f"concurrent update, retry / 并发冲突，请重试: {exc.orig}")
    return TicketError(f"ticket store unavailable / 工单库暂不可用: {exc.orig}")


def _mask_deep(value: Any, mask: Masker = mask_text) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, Mapping):
        return {k: _mask_deep(v, mask) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_deep(v, mask) for v in value]
    return value


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


class TicketStore:
    """Tickets in SQLite or PostgreSQL; safe to share between processes."""

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

    @classmethod
    def from_settings(cls) -> TicketStore:
        """One store per process and database URL (the engine's pool is reused)."""
        url = get_settings().database_url
        with _stores_lock:
            store = _stores.get(url)
            if store is None:
                store = _stores[url] = cls(url)
            return store

    def dispose(self) -> None:
        """Close the engine's pooled connections."""
        self.engine.dispose()

    # -- plumbing ----------------------------------------------------------------

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
            fresh = conn.execute(select(tickets).where(tickets.c.id == row.id)).one()
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

    # -- views -------------------------------------------------------------------

    @staticmethod
    def _mask_field(token: str | None, value: str | None, mask: Callable[[str | None], str]) -> str:
        if not token:
            return ""
        return mask(value) if value is not None else "******"

    def _known(self, row: Row) -> tuple[str | None, str | None, str | None]:
        """The row's own phone, ID number and name, or None where unreadable."""
        values = []
        for token in (row.phone_enc, row.id_number_enc, row.name_enc):
            try:
                values.append(self.cipher.decrypt(token))
            except TicketError:
                values.append(None)
        return values[0], values[1], values[2]

    def _masker(self, row: Row, known: tuple[str | None, ...] | None = None) -> Masker:
        """mask_text plus the citizen's own name and numbers, which no regex can spot."""
        phone, id_number, name = known if known is not None else self._known(row)

        def mask(text: str) -> str:
            return mask_text(text, names=(name,), numbers=(id_number, phone))

        return mask

    def _search_text(self, row: Row, values: Mapping[str, Any], mask: Masker) -> str | None:
        """What staff search: the masked text, so a search shows no more than the list.

        Searching a full name or phone number must not single out the ticket whose
        list entry shows ``李*`` / ``138****5678``; staff who may call the citizen
        back open the audited contact details instead.
        """
        fields = ("summary", "description", "place", "public_note")
        if row.search_text is not None and not any(f in values for f in fields):
            return None
        parts = [values.get(f, getattr(row, f)) for f in fields]
        return search_form(mask("\n".join(p for p in parts if p)))

    def _duplicates_of(self, conn: Connection, ids: list[int]) -> dict[int, list[str]]:
        if not ids:
            return {}
        rows = conn.execute(
            select(duplicate_links.c.ticket_id, _OTHER.c.number)
            .join(_OTHER, _OTHER.c.id == duplicate_links.c.candidate_id)
            .where(duplicate_links.c.ticket_id.in_(ids))
            .order_by(duplicate_links.c.score.desc())
        )
        found: dict[int, list[str]] = {}
        for ticket_id, number in rows:
            found.setdefault(ticket_id, []).append(number)
        return found

    def _view(
        self, conn: Connection, row: Row, duplicates: dict[int, list[str]] | None = None
    ) -> TicketView:
        if duplicates is None:
            duplicates = self._duplicates_of(conn, [row.id])
        transcript = json.loads(row.transcript or "[]")
        phone, id_number, name = known = self._known(row)
        mask = self._masker(row, known)
        return TicketView(
            number=row.number,
            status=Status(row.status),
            kind=row.kind,
            channel=row.channel,
            sender_id=row.sender_id,
            source=mask(row.source) if row.source else row.source,
            category=row.category,
            predicted_category=row.predicted_category,
            category_confidence=row.category_confidence,
            department=row.department,
            sla_class=row.sla_class,
            deadline=local(row.deadline, self.tz),  # type: ignore[arg-type]
            created_at=local(row.created_at, self.tz),  # type: ignore[arg-type]
            updated_at=local(row.updated_at, self.tz),  # type: ignore[arg-type]
            summary=mask(row.summary),
            description=mask(row.description),
            place=row.place,
            occurred=row.occurred,
            version=row.version,
            reply=mask(row.reply) if row.reply is not None else None,
            replied_at=local(row.replied_at, self.tz),
            rating=row.rating,
            rating_solved=row.rating_solved,
            rating_comment=mask(row.rating_comment) if row.rating_comment else None,
            reopen_count=row.reopen_count,
            duplicate_of=row.duplicate_of,
            probable_duplicates=tuple(duplicates.get(row.id, ())),
            transcript=tuple(_mask_deep(item, mask) for item in transcript),
            attachments=tuple(
                _mask_deep(item, mask) for item in json.loads(row.attachments or "[]")
            ),
            facts=_mask_deep(json.loads(row.facts or "{}"), mask),
            masked_phone=self._mask_field(row.phone_enc, phone, mask_phone),
            masked_id_number=self._mask_field(row.id_number_enc, id_number, mask_id_number),
            masked_name=self._mask_field(row.name_enc, name, mask_name),
            paused=row.paused_at is not None,
            escalated_at=local(row.escalated_at, self.tz),
            closed_at=local(row.closed_at, self.tz),
            purged=row.purged_at is not None,
            public_note=row.public_note,
        )

    def _views(self, conn: Connection, rows: list[Row]) -> list[TicketView]:
        duplicates = self._duplicates_of(conn, [row.id for row in rows])
        return [self._view(conn, row, duplicates) for row in rows]

    # -- creation ----------------------------------------------------------------

    def create(self, new: NewTicket, actor: Actor | None = None) -> TicketView:
        """Create a ticket, or return the one already created with the same idempotency key.

        Without ``actor`` the ticket is created by the citizen it names (``sender_id``)
        or, for tickets of no chat identity (hotline, Open311), by the system.
        """
        if actor is None:
            actor = Actor.citizen(new.sender_id) if new.sender_id else Actor.system()
        if actor.role is Role.CITIZEN and new.sender_id != actor.name:
            raise PermissionDenied(messages.NOT_OWNER)
        if new.kind not in KINDS:
            raise InvalidInput(messages.BAD_KIND.format(kind=new.kind))
        if not (new.summary or "").strip() and not (new.description or "").strip():
            raise InvalidInput(messages.EMPTY_TEXT)
        lifecycle.check(Action.CREATE, None, actor, None)
        if new.idempotency_key:
            existing = self._by_key(new.idempotency_key)
            if existing is not None:
                return existing
        try:
            with self._write() as conn:
                return self._create(conn, new, actor)
        except IntegrityError as exc:
            if new.idempotency_key:
                existing = self._by_key(new.idempotency_key)
                if existing is not None:
                    return existing
            raise ConflictError(
                f"ticket creation collided, retry / 创建冲突，请重试: {exc.orig}"
            ) from exc

    def _by_key(self, key: str) -> TicketView | None:
        with self._read() as conn:
            row = conn.execute(select(tickets).where(tickets.c.idempotency_key == key)).first()
            return self._view(conn, row) if row is not None else None

    def _create(self, conn: Connection, new: NewTicket, actor: Actor) -> TicketView:
        now = self._now()
        settings = self.settings
        number = next_number(
            conn, settings.ticket_prefix, now.astimezone(self.tz).strftime("%Y%m%d")
        )
        text = f"{new.summary}\n{new.description}"
        route = self.routing.route(
            new.category, new.category_confidence, text, settings.routing_threshold, new.kind
        )
        category_route = self.routing.categories.get(new.category or "")
        chosen = route or category_route
        category_class = chosen.sla_class if chosen else None
        sla_class = self.sla.class_for(new.kind, category_class)
        deadline = self.sla.deadline(sla_class, now)
        summary = (new.summary or new.description).strip()
        conn.execute(
            insert(tickets).values(
                number=number,
                idempotency_key=new.idempotency_key,
                status=Status.RECEIVED.value,
                version=0,
                kind=new.kind,
                channel=new.channel,
                sender_id=new.sender_id,
                source=new.source,
                summary=summary,
                description=new.description or "",
                place=new.place,
                occurred=new.occurred,
                phone_enc=self.cipher.encrypt(new.phone),
                phone_index=self._phone_index(new.phone),
                id_number_enc=self.cipher.encrypt(new.id_number),
                name_enc=self.cipher.encrypt(new.name),
                predicted_category=new.category,
                category=new.category,
                category_confidence=new.category_confidence,
                department=None,
                sla_class=sla_class,
                deadline=to_db(deadline),
                reopen_count=0,
                transcript=json.dumps(list(new.transcript), ensure_ascii=False, default=str),
                attachments=json.dumps(list(new.attachments), ensure_ascii=False, default=str),
                facts=json.dumps(dict(new.facts), ensure_ascii=False, default=str),
                created_at=to_db(now),
                updated_at=to_db(now),
                event_count=0,
                last_event_hash=GENESIS,
            )
        )
        row = conn.execute(select(tickets).where(tickets.c.number == number)).one()
        duplicates = self._find_duplicates(conn, row, now) if new.kind in DUPLICATE_KINDS else []
        row = self._record(
            conn,
            row,
            actor,
            Action.CREATE,
            to=Status.RECEIVED,
            payload={
                "kind": new.kind,
                "channel": new.channel,
                "summary": summary,
                "place": new.place,
                "category": new.category,
                "category_confidence": new.category_confidence,
                "sla_class": sla_class,
                "deadline": deadline.isoformat(),
                "has_phone": bool(new.phone),
                "has_id_number": bool(new.id_number),
                "has_name": bool(new.name),
                "probable_duplicates": [number for number, _ in duplicates],
            },
            now=now,
        )
        if route is not None:
            system = Actor.system()
            target = lifecycle.check(Action.DISPATCH, Status.RECEIVED, system, None)
            row = self._record(
                conn,
                row,
                system,
                Action.DISPATCH,
                to=target,
                reason="auto",
                payload={
                    "department": route.department,
                    "category": new.category,
                    "category_confidence": new.category_confidence,
                    "threshold": self.settings.routing_threshold,
                    "rule": "category"
                    if category_route is not None and category_route == route
                    else "keyword",
                },
                values={"department": route.department},
                now=now,
            )
        return self._view(conn, row)

    def _find_duplicates(
        self, conn: Connection, row: Row, now: datetime
    ) -> list[tuple[str, float]]:
        since = to_db(now - timedelta(days=self.settings.duplicate_window_days))
        candidates = conn.execute(
            select(
                tickets.c.id,
                tickets.c.number,
                tickets.c.summary,
                tickets.c.description,
                tickets.c.place,
            )
            .where(
                tickets.c.id != row.id,
                tickets.c.created_at >= since,
                tickets.c.status.in_([s.value for s in lifecycle.OPEN]),
                tickets.c.kind.in_(sorted(DUPLICATE_KINDS)),
            )
            .order_by(tickets.c.created_at.desc())
            .limit(DUPLICATE_CANDIDATES)
        ).all()
        text = f"{row.summary} {row.description}"
        found: list[tuple[int, str, float]] = []
        for candidate in candidates:
            score = duplicate_score(
                text,
                row.place,
                f"{candidate.summary} {candidate.description}",
                candidate.place,
                threshold=self.settings.duplicate_threshold,
                strict_threshold=max(STRICT_DUPLICATE_THRESHOLD, self.settings.duplicate_threshold),
            )
            if score is not None:
                found.append((candidate.id, candidate.number, score))
        found.sort(key=lambda item: -item[2])
        for candidate_id, _number, score in found[:5]:
            conn.execute(
                insert(duplicate_links).values(
                    ticket_id=row.id,
                    candidate_id=candidate_id,
                    score=round(score, 4),
                    created_at=to_db(now),
                )
            )
        return [(number, score) for _id, number, score in found[:5]]

    # -- contacts settled on the spot -------------------------------------------

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
            recorded: builtins.list[str] = []
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

    # -- reading -----------------------------------------------------------------

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

    # -- the ticket's life -------------------------------------------------------

    def _check_department(self, department: str) -> None:
        if department not in self.routing.departments:
            raise InvalidInput(messages.UNKNOWN_DEPARTMENT.format(department=department))

    def _routing_values(self, row: Row, department: str, category: str | None) -> dict[str, Any]:
        """Department, category and (if the category's class differs) a new deadline."""
        category = category or self.routing.category_of(department) or row.category
        values: dict[str, Any] = {"department": department, "category": category}
        route = self.routing.categories.get(category or "")
        sla_class = self.sla.class_for(row.kind, route.sla_class if route else None)
        if sla_class != row.sla_class:
            values["sla_class"] = sla_class
            values["deadline"] = to_db(self.sla.deadline(sla_class, aware(row.created_at)))
        return values

    def dispatch(
        self,
        number: str,
        department: str,
        actor: Actor,
        *,
        category: str | None = None,
        reason: str = "",
        expected_version: int | None = None,
    ) -> TicketView:
        """派单. A category differing from the router's prediction is kept for retraining."""
        self._check_department(department)
        with self._write() as conn:
            row = self._load(conn, number)
            self._expect(row, expected_version)
            target = lifecycle.check(
                Action.DISPATCH, Status(row.status), actor, row.department, reason=reason
            )
            now = self._now()
            values = self._routing_values(row, department, category)
            corrected = values["category"]
            if actor.role is not Role.SYSTEM and corrected and corrected != row.predicted_category:
                conn.execute(
                    insert(routing_corrections).values(
                        ticket_id=row.id,
                        text=self._masker(row)(f"{row.summary}\n{row.description}".strip()),
                        predicted=row.predicted_category,
                        predicted_confidence=row.category_confidence,
                        corrected=corrected,
                        department=department,
                        actor=actor.label(),
                        at=to_db(now),
                    )
                )
            row = self._record(
                conn,
                row,
                actor,
                Action.DISPATCH,
                to=target,
                reason=reason,
                payload={
                    "department": department,
                    "category": corrected,
                    "predicted_category": row.predicted_category,
                },
                values=values,
                now=now,
            )
            return self._view(conn, row)

    def start(
        self, number: str, actor: Actor, *, expected_version: int | None = None
    ) -> TicketView:
        return self._change(number, actor, Action.START, expected_version=expected_version)

    def reply(
        self, number: str, text: str, actor: Actor, *, expected_version: int | None = None
    ) -> TicketView:
        """答复: the department's answer to the citizen; stops the clock."""
        if not text.strip():
            raise InvalidInput(messages.EMPTY_TEXT)
        return self._change(
            number,
            actor,
            Action.REPLY,
            payload={"text": text},
            values=lambda row, now: {
                "reply": text,
                "replied_at": to_db(now),
                "paused_at": None,
            },
            expected_version=expected_version,
        )

    def follow_up_due(self, view: TicketView) -> datetime | None:
        """When the 回访 call is due: the next working day(s) after the reply."""
        if view.replied_at is None:
            return None
        return self.sla.calendar.next_working_day_end(
            view.replied_at.astimezone(self.tz),
            self.sla.follow_up_working_days,
            self.sla.end_of_day,
        )

    def request_follow_up(
        self, number: str, actor: Actor, *, expected_version: int | None = None
    ) -> TicketView:
        return self._change(number, actor, Action.FOLLOW_UP, expected_version=expected_version)

    def rate(
        self,
        number: str,
        score: int | None,
        solved: bool,
        comment: str,
        actor: Actor,
        *,
        expected_version: int | None = None,
    ) -> TicketView:
        """回访 result. Solved: 办结. Not solved, within the reopen window: back to work."""
        if score in (None, 0):
            score = None  # the citizen answered solved / not solved without a score
        elif isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
            raise InvalidInput(messages.BAD_SCORE.format(score=score))
        with self._write() as conn:
            row = self._load(conn, number)
            self._expect(row, expected_version)
            now = self._now()
            if row.status == Status.REPLIED.value:
                target = lifecycle.check(
                    Action.FOLLOW_UP, Status.REPLIED, actor, row.department, owner=row.sender_id
                )
                row = self._record(conn, row, actor, Action.FOLLOW_UP, to=target, now=now)
            rating = {"rating": score, "rating_solved": solved, "rating_comment": comment or None}
            payload = {"score": score, "solved": solved, "comment": comment}
            replied = aware(row.replied_at) or now
            window = timedelta(days=self.settings.ticket_reopen_days)
            if solved or now - replied > window:
                target = lifecycle.check(
                    Action.RATE_CLOSE,
                    Status(row.status),
                    actor,
                    row.department,
                    owner=row.sender_id,
                )
                if not solved:
                    payload["reopen_refused"] = "outside the reopen window"
                row = self._record(
                    conn,
                    row,
                    actor,
                    Action.RATE_CLOSE,
                    to=target,
                    payload=payload,
                    values={**rating, "closed_at": to_db(now)},
                    now=now,
                )
            else:
                target = lifecycle.check(
                    Action.RATE_REOPEN,
                    Status(row.status),
                    actor,
                    row.department,
                    owner=row.sender_id,
                )
                deadline = self.sla.deadline(row.sla_class, now)
                payload["deadline"] = deadline.isoformat()
                row = self._record(
                    conn,
                    row,
                    actor,
                    Action.RATE_REOPEN,
                    to=target,
                    payload=payload,
                    values={
                        **rating,
                        "reopen_count": row.reopen_count + 1,
                        "deadline": to_db(deadline),
                        "escalated_at": None,
                        "paused_at": None,
                    },
                    now=now,
                )
            return self._view(conn, row)

    def close(
        self, number: str, reason: str, actor: Actor, *, expected_version: int | None = None
    ) -> TicketView:
        """办结 without a rating (the citizen could not be reached for 回访)."""
        return self._change(
            number,
            actor,
            Action.CLOSE,
            reason=reason,
            values=lambda row, now: {"closed_at": to_db(now)},
            expected_version=expected_version,
        )

    def transfer(
        self,
        number: str,
        department: str | None,
        reason: str,
        actor: Actor,
        *,
        expected_version: int | None = None,
    ) -> TicketView:
        """转派 to another department, or 退回 to the dispatch queue when ``department`` is None."""
        if not department:
            return self._change(
                number,
                actor,
                Action.RETURN,
                reason=reason,
                payload={"returned_by": actor.department},
                values=lambda row, now: {"department": None, "paused_at": None},
                expected_version=expected_version,
            )
        self._check_department(department)
        with self._write() as conn:
            row = self._load(conn, number)
            self._expect(row, expected_version)
            target = lifecycle.check(
                Action.TRANSFER, Status(row.status), actor, row.department, reason=reason
            )
            values = self._routing_values(row, department, None)
            values["paused_at"] = None
            row = self._record(
                conn,
                row,
                actor,
                Action.TRANSFER,
                to=target,
                reason=reason,
                payload={"from_department": row.department, "department": department},
                values=values,
            )
            return self._view(conn, row)

    def return_to_dispatch(self, number: str, reason: str, actor: Actor) -> TicketView:
        """退回: the department says the ticket is not theirs."""
        return self.transfer(number, None, reason, actor)

    def merge(self, number: str, into: str, actor: Actor, *, reason: str = "") -> TicketView:
        """合并 a duplicate into its primary ticket; returns the merged (duplicate) ticket."""
        with self._write() as conn:
            dup = self._load(conn, number)
            primary = self._load(conn, into)
            if dup.id == primary.id:
                raise InvalidInput(messages.MERGE_SELF.format(number=dup.number))
            if primary.status == Status.MERGED.value:
                raise InvalidInput(
                    messages.MERGE_TARGET.format(into=primary.number, status=primary.status)
                )
            target = lifecycle.check(Action.MERGE, Status(dup.status), actor, dup.department)
            lifecycle.check(Action.MERGED_IN, Status(primary.status), actor, primary.department)
            now = self._now()
            dup = self._record(
                conn,
                dup,
                actor,
                Action.MERGE,
                to=target,
                reason=reason,
                payload={"into": primary.number},
                values={
                    "duplicate_of": primary.number,
                    "closed_at": to_db(now),
                    "paused_at": None,
                },
                now=now,
            )
            self._record(
                conn,
                primary,
                actor,
                Action.MERGED_IN,
                reason=reason,
                payload={"merged": dup.number},
                now=now,
            )
            return self._view(conn, dup)

    def escalate(self, number: str, reason: str, actor: Actor) -> TicketView:
        """督办 by a supervisor (the SLA check escalates breaches by itself)."""
        return self._change(
            number,
            actor,
            Action.ESCALATE,
            reason=reason,
            values=lambda row, now: {"escalated_at": to_db(now)},
        )

    def escalate_overdue(self, now: datetime | None = None) -> builtins.list[TicketView]:
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

    def add_info(
        self, number: str, text: str, actor: Actor, *, expected_version: int | None = None
    ) -> TicketView:
        """补充材料 from the citizen: appended to the transcript; restarts a paused clock."""
        if not text.strip():
            raise InvalidInput(messages.EMPTY_TEXT)
        speaker = "citizen" if actor.role in (Role.CITIZEN, Role.SYSTEM) else "agent"

        def values(row: Row, now: datetime) -> dict[str, Any]:
            lines = json.loads(row.transcript or "[]")
            lines.append({"speaker": speaker, "text": text, "time": now.isoformat()})
            changes: dict[str, Any] = {"transcript": json.dumps(lines, ensure_ascii=False)}
            if row.paused_at is not None:
                changes.update(self._resume_values(row, now))
            return changes

        return self._change(
            number,
            actor,
            Action.ADD_INFO,
            payload={"text": text},  # masked, kept beside the chain under its HMAC
            values=values,
            expected_version=expected_version,
        )

    def add_note(
        self, number: str, text: str, actor: Actor, *, expected_version: int | None = None
    ) -> TicketView:
        """Internal staff note, kept in the audit trail (masked)."""
        if not text.strip():
            raise InvalidInput(messages.EMPTY_TEXT)
        return self._change(
            number, actor, Action.NOTE, payload={"text": text}, expected_version=expected_version
        )

    def publish(
        self, number: str, text: str, actor: Actor, *, expected_version: int | None = None
    ) -> TicketView:
        """公开答复: the status note written for the public (Open311); empty text withdraws it.

        Open311 shows no other text of a ticket, and a chat or hotline ticket is
        listed there only once staff published a note: nothing a citizen typed
        becomes public by accident. The note is masked like any text, in case
        staff quoted the citizen.
        """
        text = text.strip()

        def values(row: Row, now: datetime) -> dict[str, Any]:
            return {"public_note": self._masker(row)(text) if text else None}

        return self._change(
            number,
            actor,
            Action.PUBLISH,
            payload={"text": text} if text else {"withdrawn": True},
            values=values,
            expected_version=expected_version,
        )

    def pause(
        self, number: str, reason: str, actor: Actor, *, expected_version: int | None = None
    ) -> TicketView:
        """Stop the SLA clock while waiting on the citizen (补充材料)."""

        def values(row: Row, now: datetime) -> dict[str, Any]:
            if row.paused_at is not None:
                raise InvalidInput(messages.ALREADY_PAUSED.format(number=row.number))
            return {"paused_at": to_db(now)}

        return self._change(
            number,
            actor,
            Action.PAUSE,
            reason=reason,
            values=values,
            expected_version=expected_version,
        )

    def _resume_values(self, row: Row, now: datetime) -> dict[str, Any]:
        deadline = self.sla.extend_for_pause(
            row.sla_class,
            aware(row.deadline),
            aware(row.paused_at),
            now,
        )
        return {"paused_at": None, "deadline": to_db(deadline)}

    def resume(
        self, number: str, actor: Actor, *, expected_version: int | None = None
    ) -> TicketView:
        def values(row: Row, now: datetime) -> dict[str, Any]:
            if row.paused_at is None:
                raise InvalidInput(messages.NOT_PAUSED.format(number=row.number))
            return self._resume_values(row, now)

        return self._change(
            number, actor, Action.RESUME, values=values, expected_version=expected_version
        )

    # -- audit, privacy, keys ----------------------------------------------------

    def verify_audit(self) -> builtins.list[str]:
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
    ) -> builtins.list[str]:
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

        LiveStore(self).purge(now - timedelta(days=days))
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

    def with_clock(self, clock: Callable[[], datetime]) -> TicketStore:
        """The same store reading time from ``clock`` (tests, replays)."""
        clone = object.__new__(TicketStore)
        clone.__dict__.update(self.__dict__)
        clone.clock = clock
        return clone
