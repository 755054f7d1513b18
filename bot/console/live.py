"""在线会话: the staff side of 转人工 (the Chatwoot / 12345 seat experience).

The bot opens a live session when a citizen asks for a person in staffed hours
(``actions/live.py``); it shows here at once, with the conversation so far, to
the centre and, when the conversation's ticket is with a department, to that
department. A member of staff takes it (接入); from then on the citizen's
messages are kept here instead of being answered by the bot, and what staff
write reaches the citizen on their own channel. 交还机器人 gives the
conversation back to the bot; 结束 ends it.

Every message to the citizen goes the way :mod:`bot.console.notify` sends a
ticket reply: Rasa's ``POST /conversations/{channel:id}/trigger_intent`` with an
``EXTERNAL_live_*`` intent and ``output_channel`` the citizen's own channel
(never ``latest``); the sender id stands in the path as it is (Rasa does not
unquote its path). A rule runs ``action_live_update``, which reads the message
from the store and says it. Whether it arrived (Rasa's answer) is kept per
message and shown, with a button to send it again.

The page asks ``GET /api/live`` and ``GET /api/live/{id}`` every
:data:`POLL_SECONDS` (the console has no websockets). A waiting session that
nobody took within ``HANDOFF_WAIT_MINUTES`` — the wait the bot promised — is
handed to the bot by the sweeper (:func:`sweep`, every :data:`SWEEP_SECONDS`
in the console process), which tells the citizen and files the call-back
ticket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from bot.console.accounts import LIVE_OVERRIDE_ROLES, LIVE_SERVING_ROLES, User
from bot.console.core import Console, console_of, flash, render, require_user
from bot.console.security import json_body
from bot.settings import Settings
from bot.tickets.citizens import parse
from bot.tickets.errors import (
    ConflictError,
    IllegalTransition,
    InvalidInput,
    TicketError,
    TicketNotFound,
)
from bot.tickets.live import TAKEN, LiveSession, LiveStore

log = logging.getLogger(__name__)
UTC = timezone.utc

#: how often the page asks for news (seconds); the page reads it from a data attribute
POLL_SECONDS = 2
#: how often the console looks for sessions nobody took in time
SWEEP_SECONDS = 5
#: how long ended sessions stay in the list
ENDED_SHOWN = timedelta(hours=2)
MAX_TEXT = 2000
#: a taken session with no message this long ends (Rasa's conversation session is 60 min)
IDLE_MINUTES = 50

TEXTS = {
    "not_found": "没有找到这个会话，或您无权查看。",
    "conflict": "会话已由其他工作人员接入。",
    "illegal": "会话当前状态不允许此操作，请刷新。",
    "invalid": "请输入要发送的内容。",
    "too_long": f"消息太长（最多 {MAX_TEXT} 字）。",
    "forbidden": "您的角色不能接待在线会话。",
    "not_yours": "这个会话由其他工作人员接待。",
    "unavailable": "工单库暂不可用，请稍后重试。",
    "taken": "已接入，市民会收到“人工客服已接通”。",
    "sent": "已发送。",
    "handed_back": "已交还机器人。",
    "closed": "会话已结束。",
    "failed": "消息没有送达市民",
    "routed": "已转给部门，部门的在线会话里也能看到。",
    "bad_department": "没有这个部门。",
}


class LiveRefused(Exception):
    def __init__(self, status: int, code: str, detail: str = "") -> None:
        super().__init__(code)
        self.status, self.code, self.detail = status, code, detail


def live_of(console: Console) -> LiveStore:
    found = console.extras.get("live")
    if found is None:
        found = console.extras["live"] = LiveStore(console.store)
    return found


def _refusal(exc: TicketError) -> LiveRefused:
    if isinstance(exc, TicketNotFound):
        return LiveRefused(404, "not_found")
    if isinstance(exc, ConflictError):
        return LiveRefused(409, "conflict", str(exc))
    if isinstance(exc, IllegalTransition):
        return LiveRefused(409, "illegal", str(exc))
    if isinstance(exc, InvalidInput):
        return LiveRefused(422, "invalid", str(exc))
    return LiveRefused(503, "unavailable", str(exc))


async def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return await run_in_threadpool(fn, *args, **kwargs)
    except TicketError as exc:
        raise _refusal(exc) from exc


def visible(user: User, session: LiveSession) -> bool:
    """The centre sees every session; a department only those routed to it."""
    return user.is_centre or (user.department is not None and session.department == user.department)


async def _session(console: Console, user: User, session_id: str) -> LiveSession:
    if not session_id.isdigit():
        raise LiveRefused(404, "not_found")
    session: LiveSession = await _call(live_of(console).get, int(session_id))
    if not visible(user, session):
        raise LiveRefused(404, "not_found")  # as if it did not exist: nothing leaks
    return session


def _now() -> datetime:
    return datetime.now(UTC)


def summary(
    console: Console, session: LiveSession, last_message: int | None = None
) -> dict[str, Any]:
    """A list row: what staff need to pick a session (no transcript)."""
    now = _now()
    return {
        **session.as_dict(messages=False),
        "waiting_seconds": int((now - session.created_at).total_seconds()),
        "seconds_left": max(0, int((session.expires_at - now).total_seconds()))
        if session.status == "waiting" else None,
        "overdue": session.overdue(now),
        "last_message_id": last_message,
    }


async def listing(console: Console, user: User) -> list[dict[str, Any]]:
    store = live_of(console)
    department = None if user.is_centre else (user.department or "\x00none")
    sessions = await _call(store.listing, department=department, ended_since=_now() - ENDED_SHOWN)
    last = await _call(store.last_message_ids, [s.id for s in sessions])
    return [summary(console, s, last.get(s.id)) for s in sessions]


# -- telling the citizen ------------------------------------------------------------------


async def tell(
    settings: Settings, sender_id: str, intent: str, entities: dict[str, Any]
) -> str | None:
    """Ask Rasa to run ``intent`` in the citizen's conversation; None when it was delivered.

    The same call and the same reading of Rasa's answer as :mod:`bot.console.notify`.
    """
    owner = parse(sender_id)
    if owner is None:
        return "no chat conversation to write to"
    url = f"{settings.rasa_url.rstrip('/')}/conversations/{owner}/trigger_intent"
    try:
        async with httpx.AsyncClient(timeout=settings.console_notify_timeout) as client:
            response = await client.post(
                url,
                params={"output_channel": owner.channel},
                headers=settings.rasa_api_headers(),
                json={"name": intent, "entities": entities},
            )
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    if response.status_code >= 400:
        return f"Rasa answered HTTP {response.status_code}: {response.text[:200]}"
    try:
        body = response.json()
    except ValueError:
        body = {}
    if isinstance(body, dict) and "messages" in body and owner.channel != "rest":
        return f"the {owner.channel} channel is not running; nothing was delivered"
    return None


async def _deliver(console: Console, session: LiveSession, message_id: int) -> str | None:
    error = await tell(
        console.settings, session.sender_id, "EXTERNAL_live_message",
        {"live_id": str(session.id), "live_message_id": str(message_id)},
    )
    await _call(live_of(console).set_delivery, message_id, "failed" if error else "sent", error)
    if error:
        log.warning("live session %s: message %s not delivered: %s", session.id, message_id, error)
    return error


# -- the routes ------------------------------------------------------------------------------


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or "json" in request.headers.get("accept", "")


def _answer(request: Request, session_id: int, code: str, status: int = 200,
            data: dict[str, Any] | None = None) -> Response:
    if _wants_json(request):
        body = {"ok": status < 400, "code": code, "message": TEXTS.get(code, code), **(data or {})}
        return JSONResponse(body, status_code=status)
    flash(request, TEXTS.get(code, code), "ok" if status < 400 else "error")
    return RedirectResponse(f"/live?s={session_id}", status_code=303)


def _refused(request: Request, session_id: str, exc: LiveRefused) -> Response:
    if _wants_json(request):
        return JSONResponse(
            {"ok": False, "error": exc.code, "message": TEXTS.get(exc.code, exc.code),
             "detail": exc.detail},
            status_code=exc.status,
        )
    flash(request, TEXTS.get(exc.code, exc.code), "error", exc.detail)
    return RedirectResponse(f"/live?s={session_id}" if session_id.isdigit() else "/live",
                            status_code=303)


async def _form(request: Request) -> dict[str, Any]:
    if request.headers.get("content-type", "").startswith("application/json"):
        return json_body(await request.body())
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def page(request: Request) -> Response:
    user = require_user(request)
    console = console_of(request)
    try:
        sessions = await listing(console, user)
    except LiveRefused as exc:
        return _refused(request, "", exc)
    selected = None
    wanted = request.query_params.get("s", "")
    if wanted:
        with contextlib.suppress(LiveRefused):
            selected = await _session(console, user, wanted)
    return render(
        request,
        "live.html",
        sessions=sessions,
        selected=selected,
        poll=POLL_SECONDS,
        wait_minutes=console.settings.handoff_wait_minutes,
        can_serve=user.role in LIVE_SERVING_ROLES,
        can_route=user.role in LIVE_OVERRIDE_ROLES,
        departments=console.departments,
        texts=TEXTS,
    )


async def api_list(request: Request) -> Response:
    user = require_user(request)
    console = console_of(request)
    try:
        sessions = await listing(console, user)
    except LiveRefused as exc:
        return _refused(request, "", exc)
    return JSONResponse({"sessions": sessions, "now": _now().isoformat(),
                         "wait_minutes": console.settings.handoff_wait_minutes})


async def api_session(request: Request) -> Response:
    user = require_user(request)
    console = console_of(request)
    session_id = request.path_params["session_id"]
    try:
        session = await _session(console, user, session_id)
    except LiveRefused as exc:
        return _refused(request, session_id, exc)
    after = request.query_params.get("after", "")
    data = summary(console, session)
    messages = [m.as_dict() for m in session.messages]
    if after.isdigit():
        # new messages, and staff messages whose delivery may have changed
        messages = [m for m in messages if m["id"] > int(after) or m["speaker"] == "staff"]
    data["messages"] = messages
    data["mine"] = session.status == TAKEN and session.taken_by == user.username
    return JSONResponse(data)


def _may_serve(user: User) -> None:
    if user.role not in LIVE_SERVING_ROLES:
        raise LiveRefused(403, "forbidden")


def _may_act(user: User, session: LiveSession) -> None:
    """Only the member of staff who took a session writes in it (or the centre ends it)."""
    _may_serve(user)
    if session.status == TAKEN and session.taken_by != user.username \
            and user.role not in LIVE_OVERRIDE_ROLES:
        raise LiveRefused(409, "not_yours", session.taken_by or "")


async def take(request: Request) -> Response:
    user = require_user(request)
    console = console_of(request)
    session_id = request.path_params["session_id"]
    try:
        _may_serve(user)
        session = await _session(console, user, session_id)
        taken = await _call(live_of(console).take, session.id, user.username)
    except LiveRefused as exc:
        return _refused(request, session_id, exc)
    error = await tell(console.settings, taken.sender_id, "EXTERNAL_live_taken",
                       {"live_id": str(taken.id)})
    if error:
        log.warning("live session %s: 'taken' not delivered: %s", taken.id, error)
    return _answer(request, taken.id, "taken", data={"delivery_error": error})


async def send(request: Request) -> Response:
    user = require_user(request)
    console = console_of(request)
    session_id = request.path_params["session_id"]
    try:
        _may_serve(user)
        session = await _session(console, user, session_id)
        if session.status != TAKEN or session.taken_by != user.username:
            raise LiveRefused(409, "not_yours" if session.status == TAKEN else "illegal",
                              session.taken_by or "")
        text = str((await _form(request)).get("text") or "").strip()
        if not text:
            raise LiveRefused(422, "invalid")
        if len(text) > MAX_TEXT:
            raise LiveRefused(422, "too_long")
        message = await _call(live_of(console).record, session.id, "staff", text,
                              author=user.username, delivery="pending")
    except LiveRefused as exc:
        return _refused(request, session_id, exc)
    error = await _deliver(console, session, message.id)
    return _answer(request, session.id, "failed" if error else "sent", 200,
                   {"message_id": message.id, "delivery": "failed" if error else "sent",
                    "delivery_error": error})


async def resend(request: Request) -> Response:
    user = require_user(request)
    console = console_of(request)
    session_id = request.path_params["session_id"]
    message_id = request.path_params["message_id"]
    try:
        session = await _session(console, user, session_id)
        if session.status != TAKEN or session.taken_by != user.username:
            raise LiveRefused(409, "not_yours" if session.status == TAKEN else "illegal")
        if not message_id.isdigit():
            raise LiveRefused(404, "not_found")
        message = await _call(live_of(console).message, session.id, int(message_id))
        if message.speaker != "staff" or message.delivery == "sent":
            raise LiveRefused(409, "illegal")
    except LiveRefused as exc:
        return _refused(request, session_id, exc)
    error = await _deliver(console, session, message.id)
    return _answer(request, session.id, "failed" if error else "sent", 200,
                   {"message_id": message.id, "delivery": "failed" if error else "sent",
                    "delivery_error": error})


async def _end(request: Request, reason: str) -> Response:
    user = require_user(request)
    console = console_of(request)
    session_id = request.path_params["session_id"]
    try:
        session = await _session(console, user, session_id)
        _may_act(user, session)
        staff_only = None if user.role in LIVE_OVERRIDE_ROLES else user.username
        ended = await _call(live_of(console).end, session.id, reason, user.username,
                            staff_only=staff_only)
    except LiveRefused as exc:
        return _refused(request, session_id, exc)
    error = await tell(console.settings, ended.sender_id, "EXTERNAL_live_ended",
                       {"live_id": str(ended.id)})
    if error:
        log.warning("live session %s: end not delivered: %s", ended.id, error)
    return _answer(request, ended.id, reason, data={"delivery_error": error})


async def route(request: Request) -> Response:
    """转部门: the centre shows a session to a department (its staff may then take it)."""
    user = require_user(request)
    console = console_of(request)
    session_id = request.path_params["session_id"]
    try:
        if user.role not in LIVE_OVERRIDE_ROLES:
            raise LiveRefused(403, "forbidden")
        session = await _session(console, user, session_id)
        department = str((await _form(request)).get("department") or "").strip() or None
        if department is not None and department not in console.departments:
            raise LiveRefused(422, "bad_department", department)
        await _call(live_of(console).route, session.id, department, user.username)
    except LiveRefused as exc:
        return _refused(request, session_id, exc)
    return _answer(request, session.id, "routed")


async def hand_back(request: Request) -> Response:
    return await _end(request, "handed_back")


async def close(request: Request) -> Response:
    return await _end(request, "closed")


# -- the sweeper: sessions nobody took in time ---------------------------------------------


async def sweep(console: Console, tried: dict[int, float] | None = None) -> list[int]:
    """Tell the bot about every waiting session past its wait; returns the ids asked about.

    The bot (``action_live_update``) says so to the citizen and files the
    call-back ticket, exactly once (the session ends in the same transaction that
    checks it is still waiting). A channel that cannot deliver is asked again
    later (every 30 s), never in a tight loop.
    """
    tried = tried if tried is not None else {}
    store = live_of(console)
    asked: list[int] = []
    for session in await run_in_threadpool(store.overdue):
        last = tried.get(session.id)
        if last is not None and time.monotonic() - last < 30:
            continue
        tried[session.id] = time.monotonic()
        await run_in_threadpool(store.note_expiry_attempt, session.id)
        error = await tell(console.settings, session.sender_id, "EXTERNAL_live_timeout",
                           {"live_id": str(session.id)})
        if error:
            log.warning("live session %s: timeout not delivered: %s", session.id, error)
        asked.append(session.id)
    return asked


async def lapse_idle(console: Console, now: datetime | None = None) -> list[int]:
    """End taken sessions with no message for :data:`IDLE_MINUTES`, and tell the citizen.

    Rasa starts a new conversation session after an hour without messages and
    forgets the slot that routes the citizen to staff; a seat left open that long
    is ended first, so that what the citizen writes next is not lost on either side.
    """
    store = live_of(console)
    now = now or _now()
    ended: list[int] = []
    for session in await run_in_threadpool(store.listing):
        if session.status != TAKEN or now - session.updated_at < timedelta(minutes=IDLE_MINUTES):
            continue
        try:
            done = await run_in_threadpool(store.end, session.id, "lapsed", "system")
        except TicketError:
            continue
        error = await tell(console.settings, done.sender_id, "EXTERNAL_live_ended",
                           {"live_id": str(done.id)})
        if error:
            log.warning("live session %s: end not delivered: %s", done.id, error)
        ended.append(done.id)
    return ended


async def sweeper(console: Console) -> None:
    tried: dict[int, float] = {}
    while True:
        try:
            await sweep(console, tried)
            await lapse_idle(console)
        except asyncio.CancelledError:
            raise
        except Exception:  # the database or Rasa away for a moment: try again later
            log.exception("live sweep failed")
        await asyncio.sleep(SWEEP_SECONDS)


@contextlib.asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    """The sweeper runs with the server (a test client used without ``with`` starts none)."""
    task = asyncio.create_task(sweeper(app.state.console))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


routes = [
    Route("/live", page, methods=["GET"]),
    Route("/api/live", api_list, methods=["GET"]),
    Route("/api/live/{session_id}", api_session, methods=["GET"]),
    Route("/live/{session_id}/take", take, methods=["POST"]),
    Route("/live/{session_id}/send", send, methods=["POST"]),
    Route("/live/{session_id}/hand_back", hand_back, methods=["POST"]),
    Route("/live/{session_id}/close", close, methods=["POST"]),
    Route("/live/{session_id}/route", route, methods=["POST"]),
    Route("/live/{session_id}/resend/{message_id}", resend, methods=["POST"]),
    Route("/api/live/{session_id}/take", take, methods=["POST"]),
    Route("/api/live/{session_id}/send", send, methods=["POST"]),
    Route("/api/live/{session_id}/hand_back", hand_back, methods=["POST"]),
    Route("/api/live/{session_id}/close", close, methods=["POST"]),
    Route("/api/live/{session_id}/route", route, methods=["POST"]),
    Route("/api/live/{session_id}/resend/{message_id}", resend, methods=["POST"]),
]
