"""转人工 live chat: a citizen's conversation handed to a member of staff, and back.

A *live session* is opened by the bot when a citizen asks for a person in staffed
hours (``actions/live.py``). It is ``waiting`` until someone in the console takes
it (``taken``), and ``ended`` when staff hand it back to the bot, close it, or
nobody took it within ``HANDOFF_WAIT_MINUTES`` (the bot then files a call-back
ticket). At most one session per citizen is open (``open_key`` is unique), so a
retried handoff finds the open session instead of opening a second.

Its messages, both ways, are kept here: the conversation before the handoff
(``flag = before``), what the citizen wrote during it (the bot forwards and stays
silent), what staff wrote and whether it reached the citizen (``delivery``).
Texts are what people typed, encrypted with the personal-data key like contact
details: staff serving a citizen read them as written; nothing else lists them.

Times are stored as naive UTC, like the tickets' (see :mod:`bot.tickets.times`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError

from bot.tickets.errors import ConflictError, IllegalTransition, InvalidInput, TicketNotFound
from bot.tickets.schema import live_messages, live_sessions
from bot.tickets.store import TicketStore
from bot.tickets.times import UTC, aware, local, to_db

WAITING, TAKEN, ENDED = "waiting", "taken", "ended"
OPEN = (WAITING, TAKEN)
#: why a session ended
END_REASONS = frozenset({"handed_back", "closed", "expired", "cancelled", "lapsed"})
SPEAKERS = frozenset({"citizen", "bot", "staff", "system"})
#: longest message kept (a citizen's message is capped by the channels long before)
MAX_TEXT = 4000


@dataclass(frozen=True)
class LiveMessage:
    id: int
    speaker: str
    text: str
    at: datetime
    author: str | None = None
    flag: str | None = None
    delivery: str | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "speaker": self.speaker,
            "text": self.text,
            "at": self.at.isoformat(),
            "author": self.author,
            "flag": self.flag,
            "delivery": self.delivery,
            "error": self.error,
        }


@dataclass(frozen=True)
class LiveSession:
    id: int
    sender_id: str
    channel: str
    status: str
    request: str
    department: str | None
    ticket_number: str | None
    taken_by: str | None
    taken_at: datetime | None
    expires_at: datetime
    end_reason: str | None
    ended_by: str | None
    ended_at: datetime | None
    callback_number: str | None
    expiry_attempts: int
    created_at: datetime
    updated_at: datetime
    version: int
    messages: list[LiveMessage] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    def overdue(self, now: datetime) -> bool:
        """Waiting past the promised wait: due to become a call-back ticket."""
        return self.status == WAITING and now >= self.expires_at

    def as_dict(self, *, messages: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "channel": self.channel,
            "status": self.status,
            "request": self.request,
            "department": self.department,
            "ticket_number": self.ticket_number,
            "taken_by": self.taken_by,
            "taken_at": self.taken_at.isoformat() if self.taken_at else None,
            "expires_at": self.expires_at.isoformat(),
            "end_reason": self.end_reason,
            "ended_by": self.ended_by,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "callback_number": self.callback_number,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "version": self.version,
        }
        if messages:
            out["messages"] = [m.as_dict() for m in self.messages]
        return out


class LiveStore:
    """Live sessions in the ticket database; shares the ticket store's engine, key and clock."""

    def __init__(self, store: TicketStore) -> None:
        self.store = store

    # -- plumbing ------------------------------------------------------------------
    def _now(self) -> datetime:
        return self.store._now()

    def _write(self) -> Any:
        return self.store._write()

    def _read(self) -> Any:
        return self.store._read()

    def _local(self, value: datetime | None) -> datetime | None:
        """Stored naive UTC -> aware local time, as staff read it."""
        return local(value, self.store.tz)

    def _encrypt(self, text: str) -> str:
        token = self.store.cipher.encrypt(text[:MAX_TEXT])
        assert token is not None
        return token

    def _decrypt(self, token: str | None) -> str:
        if not token:
            return ""
        try:
            return self.store.cipher.decrypt(token) or ""
        except Exception:  # a key no longer held: say so, never crash a page
            return "（无法解密）"

    def _message(self, row: Row) -> LiveMessage:
        return LiveMessage(
            id=row.id,
            speaker=row.speaker,
            text=self._decrypt(row.text_enc),
            at=self._local(row.at),  # type: ignore[arg-type]
            author=row.author,
            flag=row.flag,
            delivery=row.delivery,
            error=row.error,
        )

    def _session(self, conn: Connection, row: Row, *, messages: bool) -> LiveSession:
        found: list[LiveMessage] = []
        if messages:
            rows = conn.execute(
                select(live_messages)
                .where(live_messages.c.session_id == row.id)
                .order_by(live_messages.c.id)
            ).all()
            found = [self._message(r) for r in rows]
        return LiveSession(
            id=row.id,
            sender_id=row.sender_id,
            channel=row.channel,
            status=row.status,
            request=self._decrypt(row.request_enc),
            department=row.department,
            ticket_number=row.ticket_number,
            taken_by=row.taken_by,
            taken_at=self._local(row.taken_at),
            expires_at=self._local(row.expires_at),  # type: ignore[arg-type]
            end_reason=row.end_reason,
            ended_by=row.ended_by,
            ended_at=self._local(row.ended_at),
            callback_number=row.callback_number,
            expiry_attempts=row.expiry_attempts,
            created_at=self._local(row.created_at),  # type: ignore[arg-type]
            updated_at=self._local(row.updated_at),  # type: ignore[arg-type]
            version=row.version,
            messages=found,
        )

    def _row(self, conn: Connection, session_id: int) -> Row:
        row = conn.execute(select(live_sessions).where(live_sessions.c.id == session_id)).first()
        if row is None:
            raise TicketNotFound(f"live session {session_id} not found / 没有这个在线会话")
        return row

    def _insert_message(
        self,
        conn: Connection,
        session_id: int,
        speaker: str,
        text: str,
        at: datetime,
        *,
        author: str | None = None,
        flag: str | None = None,
        delivery: str | None = None,
    ) -> int:
        if speaker not in SPEAKERS:
            raise InvalidInput(f"unknown speaker {speaker!r}")
        result = conn.execute(
            insert(live_messages).values(
                session_id=session_id,
                speaker=speaker,
                author=author,
                text_enc=self._encrypt(text),
                flag=flag,
                delivery=delivery,
                at=to_db(at),
            )
        )
        return int(result.inserted_primary_key[0])

    def _touch(self, conn: Connection, row: Row, now: datetime, **values: Any) -> None:
        """Change a session if nobody else did since ``row`` was read (else ConflictError)."""
        done = conn.execute(
            update(live_sessions)
            .where(and_(live_sessions.c.id == row.id, live_sessions.c.version == row.version))
            .values(version=row.version + 1, updated_at=to_db(now), **values)
        )
        if done.rowcount != 1:
            raise ConflictError("the live session changed meanwhile / 会话已被他人更新，请刷新")

    # -- the bot's side --------------------------------------------------------------
    def open(
        self,
        sender_id: str,
        channel: str,
        request: str,
        *,
        wait_minutes: int,
        history: Iterable[dict[str, Any]] = (),
        department: str | None = None,
        ticket_number: str | None = None,
    ) -> LiveSession:
        """Open a waiting session with the conversation so far, or return the open one."""
        existing = self.current(sender_id)
        if existing is not None:
            return existing
        now = self._now()
        try:
            with self._write() as conn:
                result = conn.execute(
                    insert(live_sessions).values(
                        sender_id=sender_id,
                        channel=channel,
                        status=WAITING,
                        open_key=sender_id,
                        request_enc=self._encrypt(request) if request else None,
                        department=department,
                        ticket_number=ticket_number,
                        expires_at=to_db(now + timedelta(minutes=wait_minutes)),
                        expiry_attempts=0,
                        created_at=to_db(now),
                        updated_at=to_db(now),
                        version=1,
                    )
                )
                session_id = int(result.inserted_primary_key[0])
                for line in history:
                    text = str(line.get("text") or "").strip()
                    if not text:
                        continue
                    speaker = "citizen" if line.get("speaker") == "citizen" else "bot"
                    at = now
                    if line.get("time"):
                        try:
                            at = datetime.fromisoformat(str(line["time"]))
                            at = at if at.tzinfo else at.replace(tzinfo=UTC)
                        except ValueError:
                            at = now
                    self._insert_message(conn, session_id, speaker, text, at, flag="before")
                return self._session(conn, self._row(conn, session_id), messages=False)
        except IntegrityError:
            # another request of the same citizen opened one first: that is the session
            existing = self.current(sender_id)
            if existing is None:
                raise
            return existing

    def current(self, sender_id: str, *, messages: bool = False) -> LiveSession | None:
        """The citizen's open session (waiting or taken), if any."""
        with self._read() as conn:
            row = conn.execute(
                select(live_sessions).where(live_sessions.c.open_key == sender_id)
            ).first()
            return self._session(conn, row, messages=messages) if row is not None else None

    def record(
        self, session_id: int, speaker: str, text: str, *, author: str | None = None,
        flag: str | None = None, delivery: str | None = None,
    ) -> LiveMessage:
        """Keep one message of the session (the citizen's, the bot's, staff's)."""
        if not text.strip():
            raise InvalidInput("empty message / 消息为空")
        now = self._now()
        with self._write() as conn:
            row = self._row(conn, session_id)
            if speaker == "staff" and row.status != TAKEN:
                raise IllegalTransition("take the session first / 请先接入会话")
            message_id = self._insert_message(
                conn, session_id, speaker, text, now, author=author, flag=flag, delivery=delivery
            )
            self._touch(conn, row, now)
            found = conn.execute(
                select(live_messages).where(live_messages.c.id == message_id)
            ).one()
            return self._message(found)

    def set_request(self, session_id: int, request: str) -> None:
        """What the citizen asked for, when the handoff itself did not say."""
        now = self._now()
        with self._write() as conn:
            row = self._row(conn, session_id)
            if not row.request_enc and request.strip():
                self._touch(conn, row, now, request_enc=self._encrypt(request.strip()))

    def message(self, session_id: int, message_id: int) -> LiveMessage:
        with self._read() as conn:
            row = conn.execute(
                select(live_messages).where(
                    and_(live_messages.c.id == message_id,
                         live_messages.c.session_id == session_id)
                )
            ).first()
            if row is None:
                raise TicketNotFound(f"message {message_id} not found")
            return self._message(row)

    def set_delivery(self, message_id: int, delivery: str, error: str | None = None) -> None:
        with self._write() as conn:
            conn.execute(
                update(live_messages)
                .where(live_messages.c.id == message_id)
                .values(delivery=delivery, error=(error or None) and error[:500])
            )

    # -- staff's side ------------------------------------------------------------------
    def get(self, session_id: int, *, messages: bool = True) -> LiveSession:
        with self._read() as conn:
            return self._session(conn, self._row(conn, session_id), messages=messages)

    def take(self, session_id: int, staff: str) -> LiveSession:
        """接入: the first member of staff to take a waiting session has it."""
        now = self._now()
        with self._write() as conn:
            row = self._row(conn, session_id)
            if row.status == TAKEN and row.taken_by == staff:
                return self._session(conn, row, messages=False)
            if row.status == TAKEN:
                raise ConflictError(f"already taken by {row.taken_by} / 已由 {row.taken_by} 接入")
            if row.status != WAITING:
                raise IllegalTransition("the session has ended / 会话已结束")
            self._touch(conn, row, now, status=TAKEN, taken_by=staff, taken_at=to_db(now))
            self._insert_message(conn, session_id, "system", f"{staff} 接入", now)
            return self._session(conn, self._row(conn, session_id), messages=False)

    def end(
        self, session_id: int, reason: str, by: str, *, staff_only: str | None = None,
        callback_number: str | None = None,
    ) -> LiveSession:
        """End an open session. ``staff_only``: only the member of staff who took it may."""
        if reason not in END_REASONS:
            raise InvalidInput(f"unknown reason {reason!r}")
        now = self._now()
        with self._write() as conn:
            row = self._row(conn, session_id)
            if row.status == ENDED:
                raise IllegalTransition("the session has ended / 会话已结束")
            if reason == "expired" and (row.status != WAITING or aware(row.expires_at) > now):
                raise IllegalTransition("the session is not overdue / 会话未超时")
            if staff_only is not None and row.status == TAKEN and row.taken_by != staff_only:
                raise ConflictError(f"taken by {row.taken_by} / 已由 {row.taken_by} 接入")
            self._touch(
                conn, row, now, status=ENDED, open_key=None, end_reason=reason, ended_by=by,
                ended_at=to_db(now), callback_number=callback_number,
            )
            self._insert_message(conn, session_id, "system", f"{by}: {reason}", now)
            return self._session(conn, self._row(conn, session_id), messages=False)

    def route(self, session_id: int, department: str | None, by: str) -> LiveSession:
        """转部门: show an open session in a department's queue too (None: the centre only)."""
        now = self._now()
        with self._write() as conn:
            row = self._row(conn, session_id)
            if row.status not in OPEN:
                raise IllegalTransition("the session has ended / 会话已结束")
            self._touch(conn, row, now, department=department)
            note = f"{by} 转给 {department}" if department else f"{by} 收回中心"
            self._insert_message(conn, session_id, "system", note, now)
            return self._session(conn, self._row(conn, session_id), messages=False)

    def end_callback(self, session_id: int, number: str) -> None:
        """The call-back ticket filed for an expired session."""
        with self._write() as conn:
            conn.execute(
                update(live_sessions)
                .where(live_sessions.c.id == session_id)
                .values(callback_number=number)
            )

    def listing(
        self, *, department: str | None = None, ended_since: datetime | None = None,
    ) -> list[LiveSession]:
        """Open sessions (oldest first), then those ended since ``ended_since``.

        ``department``: only the sessions routed to it (department staff's view).
        """
        stmt = select(live_sessions)
        condition = live_sessions.c.status.in_(OPEN)
        if ended_since is not None:
            condition = condition | (live_sessions.c.ended_at >= to_db(ended_since))
        stmt = stmt.where(condition)
        if department is not None:
            stmt = stmt.where(live_sessions.c.department == department)
        with self._read() as conn:
            rows = conn.execute(stmt.order_by(live_sessions.c.id)).all()
            sessions = [self._session(conn, row, messages=False) for row in rows]
        return sorted(sessions, key=lambda s: (not s.is_open, s.created_at))

    def last_message_ids(self, ids: Iterable[int]) -> dict[int, int]:
        """Newest message id of each session (what the queue polls to see news)."""
        wanted = list(ids)
        if not wanted:
            return {}
        with self._read() as conn:
            rows = conn.execute(
                select(live_messages.c.session_id, func.max(live_messages.c.id))
                .where(live_messages.c.session_id.in_(wanted))
                .group_by(live_messages.c.session_id)
            ).all()
        return {int(r[0]): int(r[1]) for r in rows}

    def overdue(self, now: datetime | None = None) -> list[LiveSession]:
        """Waiting sessions past their promised wait (the console's sweeper asks)."""
        now = now or self._now()
        with self._read() as conn:
            rows = conn.execute(
                select(live_sessions).where(
                    and_(live_sessions.c.status == WAITING,
                         live_sessions.c.expires_at <= to_db(now))
                ).order_by(live_sessions.c.id)
            ).all()
            return [self._session(conn, row, messages=False) for row in rows]

    def note_expiry_attempt(self, session_id: int) -> None:
        with self._write() as conn:
            conn.execute(
                update(live_sessions)
                .where(live_sessions.c.id == session_id)
                .values(expiry_attempts=live_sessions.c.expiry_attempts + 1)
            )

    def purge(self, before: datetime) -> int:
        """Delete the texts of sessions that ended before ``before``; returns sessions emptied.

        The session rows stay (who took it, when, how it ended, the call-back
        ticket) without the request; what people wrote goes. For the retention
        run beside the tickets' purge (``TICKET_RETENTION_DAYS``).
        """
        with self._write() as conn:
            ids = list(conn.execute(
                select(live_sessions.c.id).where(
                    and_(live_sessions.c.status == ENDED,
                         live_sessions.c.ended_at < to_db(before)))
            ).scalars())
            if not ids:
                return 0
            conn.execute(live_messages.delete().where(live_messages.c.session_id.in_(ids)))
            conn.execute(update(live_sessions).where(live_sessions.c.id.in_(ids))
                         .values(request_enc=None))
            return len(ids)

    def citizen_lines(self, session_id: int) -> Iterator[str]:
        """What the citizen wrote during the session (not before it), oldest first."""
        for message in self.get(session_id).messages:
            if message.speaker == "citizen" and message.flag != "before":
                yield message.text
