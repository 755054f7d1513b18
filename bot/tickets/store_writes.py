"""Writes: a ticket's creation and every step of its life, each through ``lifecycle``.

Creation (number, routing, SLA deadline, encrypted contact details, probable
duplicates) and the steps staff and citizens take afterwards: 派单, 处理,
答复, 回访, 办结, 转派/退回, 合并, 督办, 补充材料, notes, the public note,
pausing and resuming the clock. Each one is a transaction of
:class:`~bot.tickets.store_core.StoreCore` (``_change`` or ``_record``), so the
state machine is asked and the audit chain extended in the same place every time.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError

from bot.tickets import lifecycle, messages
from bot.tickets.audit import GENESIS
from bot.tickets.duplicates import duplicate_score
from bot.tickets.errors import ConflictError, InvalidInput, PermissionDenied
from bot.tickets.lifecycle import Action
from bot.tickets.models import KINDS, Actor, NewTicket, Role, Status, TicketView
from bot.tickets.numbers import next_number
from bot.tickets.schema import duplicate_links, routing_corrections, tickets
from bot.tickets.store_core import StoreCore
from bot.tickets.times import aware, to_db

#: a probable duplicate without a known place must be nearly the same text
STRICT_DUPLICATE_THRESHOLD = 0.85
#: how many recent open tickets a new complaint is compared with
DUPLICATE_CANDIDATES = 500
DUPLICATE_KINDS = frozenset({"complaint", "report", "help", "emergency"})


class Writes(StoreCore):
    """Creating tickets and moving them through their life."""

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
