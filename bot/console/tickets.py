"""The ticket page and the actions staff take on a ticket (forms and API share them).

Every change goes through a :class:`TicketStore` method with the user's
:class:`Actor`; the store enforces roles, the department boundary and the state
machine. The console checks visibility first (department staff see only their
department's tickets, and a ticket they may not see is "not found" to them) and
passes the form's ``expected_version`` so a stale form fails with a conflict
instead of overwriting a newer change.

A conflict never eats what staff typed: the refusal names the changes the form
missed (who did what, :meth:`TicketStore.changes_since`) and the version to
apply the same input on, and the page shows the typed text again. Looking at
contact details is audited but is no change (it does not move the version).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from bot.console import wording
from bot.console.accounts import User
from bot.console.core import (
    Console,
    Refused,
    call,
    console_of,
    flash,
    flash_refusal,
    render,
    require_user,
)
from bot.tickets import lifecycle
from bot.tickets.errors import TicketError
from bot.tickets.lifecycle import Action
from bot.tickets.models import Status, TicketView
from bot.tickets.numbers import normalize_ticket_number

TEXT_MAX = 5000
REASON_MAX = 1000
SHORT_MAX = 100


@dataclass(frozen=True)
class Spec:
    """One console action: the lifecycle action that guards it and its inputs."""

    guard: Action
    fields: tuple[str, ...] = ()
    #: tell the citizen afterwards (event name for the notification record)
    notify: str | None = None


ACTIONS: dict[str, Spec] = {
    "dispatch": Spec(Action.DISPATCH, ("department", "category", "reason")),
    "start": Spec(Action.START),
    "reply": Spec(Action.REPLY, ("text",), notify="reply"),
    "close": Spec(Action.CLOSE, ("reason",), notify="close"),
    "transfer": Spec(Action.TRANSFER, ("department", "reason")),
    "return": Spec(Action.RETURN, ("reason",)),
    "merge": Spec(Action.MERGE, ("into", "reason")),
    "escalate": Spec(Action.ESCALATE, ("reason",)),
    "note": Spec(Action.NOTE, ("text",)),
    "publish": Spec(Action.PUBLISH, ("text",)),
    "pause": Spec(Action.PAUSE, ("reason",)),
    "resume": Spec(Action.RESUME),
    "rate": Spec(Action.RATE_CLOSE, ("score", "solved", "comment")),
}
LIMITS = {
    "text": TEXT_MAX,
    "reason": REASON_MAX,
    "comment": REASON_MAX,
    "department": SHORT_MAX,
    "category": SHORT_MAX,
    "into": SHORT_MAX,
    "score": 2,
    "solved": 8,
}


def canonical_number(console: Console, number: str) -> str:
    """The canonical ticket number, or 404 for anything that is not one."""
    canonical = (
        normalize_ticket_number(number, console.settings.ticket_prefix)
        if len(number) <= SHORT_MAX
        else None
    )
    if canonical is None:
        raise Refused(404, "bad_number")
    return canonical


def can_see(user: User, view: TicketView) -> bool:
    """Centre roles see every ticket; department staff only their department's."""
    return user.is_centre or (user.department is not None and view.department == user.department)


async def load_visible(console: Console, user: User, number: str) -> TicketView:
    view = await call(console.store.get, canonical_number(console, number))
    if not can_see(user, view):
        # the same answer as a missing ticket: nothing is told about other departments
        raise Refused(404, "not_found")
    return view


def is_overdue(view: TicketView, now: datetime) -> bool:
    return view.status in lifecycle.ACTIVE and not view.paused and view.deadline < now


def offered(view: TicketView, user: User) -> list[str]:
    """The console actions this user may take on this ticket now (buttons to show)."""
    allowed = set(lifecycle.allowed_actions(view.status, user.actor, view.department))
    names = [name for name, spec in ACTIONS.items() if spec.guard in allowed]
    if "pause" in names and view.paused:
        names.remove("pause")
    if "resume" in names and not view.paused:
        names.remove("resume")
    if "rate" in names and view.status not in (Status.REPLIED, Status.FOLLOW_UP):
        names.remove("rate")
    if view.status is Status.REPLIED and Action.RATE_CLOSE in lifecycle.allowed_actions(
        Status.FOLLOW_UP, user.actor, view.department
    ):
        names.append("rate")  # 回访 by phone right after the reply
    return names


def _clean(data: Mapping[str, Any], fields: tuple[str, ...]) -> dict[str, str]:
    values: dict[str, str] = {}
    for name in fields:
        raw = data.get(name)
        value = "" if raw is None else str(raw).strip()
        if len(value) > LIMITS.get(name, SHORT_MAX):
            raise Refused(422, "too_long", name)
        values[name] = value
    return values


def _version(data: Mapping[str, Any]) -> int | None:
    raw = data.get("expected_version")
    if raw in (None, ""):
        return None
    if isinstance(raw, bool):
        raise Refused(422, "bad_version")
    try:
        version = int(str(raw))
    except ValueError as exc:
        raise Refused(422, "bad_version") from exc
    if version < 0:
        raise Refused(422, "bad_version")
    return version


async def perform(
    console: Console, user: User, number: str, name: str, data: Mapping[str, Any]
) -> TicketView:
    """Run console action ``name`` on a ticket the user can see; raise :class:`Refused`.

    A conflict is raised with what the form missed (:func:`conflict`).
    """
    spec = ACTIONS.get(name)
    if spec is None:
        raise Refused(404, "unknown_action")
    view = await load_visible(console, user, number)
    values = _clean(data, spec.fields)
    version = _version(data)
    try:
        return await _perform(console, user, view, name, values, version)
    except Refused as refusal:
        if refusal.code != "conflict":
            raise
        raise await conflict(console, user, view.number, name, version, refusal) from refusal


async def conflict(
    console: Console, user: User, number: str, name: str, version: int | None, refusal: Refused
) -> Refused:
    """A 409 that says who changed what since ``version``, and whether to apply again.

    ``current_version`` is what the same input is applied on ("按最新版本提交");
    ``can_retry`` is false when the action is no longer offered on the ticket as
    it is now (someone else replied, transferred it …).
    """
    current = await call(console.store.get, number)
    changes = (
        await call(console.store.changes_since, number, version) if version is not None else []
    )
    lines = [wording.change_line(console.messages, e, console.store.tz) for e in changes]
    return Refused(
        409,
        "conflict",
        refusal.detail,
        extra={
            "current_version": current.version,
            "changes": lines,
            "can_retry": name in offered(current, user),
        },
    )


async def _perform(
    console: Console,
    user: User,
    view: TicketView,
    name: str,
    values: dict[str, str],
    version: int | None,
) -> TicketView:
    store, actor, n = console.store, user.actor, view.number
    if name == "dispatch":
        if not values["department"]:
            raise Refused(422, "department_required")
        return await call(
            store.dispatch,
            n,
            values["department"],
            actor,
            category=values["category"] or None,
            reason=values["reason"],
            expected_version=version,
        )
    if name == "transfer":
        if not values["department"]:
            raise Refused(422, "department_required")
        return await call(
            store.transfer,
            n,
            values["department"],
            values["reason"],
            actor,
            expected_version=version,
        )
    if name == "return":
        return await call(
            store.transfer, n, None, values["reason"], actor, expected_version=version
        )
    if name == "start":
        return await call(store.start, n, actor, expected_version=version)
    if name == "reply":
        return await call(store.reply, n, values["text"], actor, expected_version=version)
    if name == "note":
        return await call(store.add_note, n, values["text"], actor, expected_version=version)
    if name == "publish":
        return await call(store.publish, n, values["text"], actor, expected_version=version)
    if name == "close":
        return await call(store.close, n, values["reason"], actor, expected_version=version)
    if name == "pause":
        return await call(store.pause, n, values["reason"], actor, expected_version=version)
    if name == "resume":
        return await call(store.resume, n, actor, expected_version=version)
    if name == "rate":
        score_text = values["score"]
        if score_text and not score_text.isdigit():
            raise Refused(422, "bad_score")
        solved = values["solved"].lower()
        if solved not in ("yes", "no", "true", "false", "1", "0"):
            raise Refused(422, "bad_solved")
        return await call(
            store.rate,
            n,
            int(score_text) if score_text else None,
            solved in ("yes", "true", "1"),
            values["comment"],
            actor,
            expected_version=version,
        )
    # merge and escalate take no expected_version: compare it here before acting
    if version is not None and version != view.version:
        raise Refused(409, "conflict")
    if name == "merge":
        into = canonical_number(console, values["into"]) if values["into"] else ""
        if not into:
            raise Refused(422, "into_required")
        await load_visible(console, user, into)
        return await call(store.merge, n, into, actor, reason=values["reason"])
    if name == "escalate":
        return await call(store.escalate, n, values["reason"], actor)
    raise Refused(404, "unknown_action")  # pragma: no cover - every Spec is handled above


def notification_task(console: Console, number: str, name: str) -> BackgroundTask | None:
    """The citizen is told after the response is sent, never while staff wait."""
    spec = ACTIONS[name]
    if spec.notify is None:
        return None
    return BackgroundTask(console.extras["notifier"].notify, number, spec.notify)


async def ticket_context(console: Console, user: User, view: TicketView) -> dict[str, Any]:
    """Everything the ticket page shows, also returned by the API's ticket detail."""
    history = await call(console.store.history, view.number)
    notification = await call(console.accounts.notification, view.number)
    duplicates: list[TicketView] = []
    if user.is_centre:
        for other in view.probable_duplicates:
            try:
                duplicates.append(await call(console.store.get, other))
            except Refused:
                continue
    return {
        "ticket": view,
        "history": history,
        "notes": [e for e in history if e["action"] == Action.NOTE.value],
        "actions": offered(view, user),
        "notification": notification,
        "duplicates": duplicates,
        "follow_up_due": console.store.follow_up_due(view),
        "overdue": is_overdue(view, datetime.now(view.deadline.tzinfo)),
        "suggested_department": console.suggested_department(view.predicted_category),
    }


def _page(
    request: Request, console: Console, context: dict[str, Any], status: int = 200, **extra: Any
) -> Response:
    return render(
        request,
        "ticket.html",
        status=status,
        departments=console.departments,
        categories=console.categories,
        draft=extra.pop("draft", {}),
        problem=extra.pop("problem", None),
        **extra,
        **context,
    )


async def ticket_page(request: Request) -> Response:
    user = require_user(request)
    console = console_of(request)
    view = await load_visible(console, user, request.path_params["number"])
    context = await ticket_context(console, user, view)
    return _page(request, console, context)


async def ticket_action(request: Request) -> Response:
    """A plain HTML form (no JavaScript): act, then show the ticket again.

    Refused, the ticket is shown as it is now with the typed input back in its
    form (whose ``expected_version`` is now the current one: submitting again
    applies it on the fresh version) and, for a conflict, what had changed.
    """
    user = require_user(request)
    console = console_of(request)
    name = request.path_params["action"]
    form = await request.form()
    try:
        view = await perform(console, user, request.path_params["number"], name, form)
    except Refused as refusal:
        if refusal.status in (404, 413):
            raise
        flash_refusal(request, refusal)
        target = canonical_number(console, request.path_params["number"])
        view = await load_visible(console, user, target)
        context = await ticket_context(console, user, view)
        spec = ACTIONS.get(name)
        typed = {
            field: str(form.get(field) or "")[: LIMITS.get(field, SHORT_MAX) * 2]
            for field in (spec.fields if spec else ())
        }
        return _page(
            request,
            console,
            context,
            status=refusal.status,
            draft={name: typed},
            problem={
                "action": name,
                "code": refusal.code,
                "message": console.explain(refusal),
                **refusal.extra,
            },
        )
    flash(request, f"done_{name}")
    return RedirectResponse(
        f"/tickets/{view.number}",
        status_code=303,
        background=notification_task(console, view.number, name),
    )


async def retry_notification(request: Request) -> Response:
    user = require_user(request)
    console = console_of(request)
    view = await load_visible(console, user, request.path_params["number"])
    record = await call(console.accounts.notification, view.number)
    event = record["event"] if record else ("close" if view.status is Status.CLOSED else "reply")
    try:
        status = await console.extras["notifier"].notify(view.number, event)
    except TicketError as exc:  # pragma: no cover - notify catches store errors itself
        raise Refused(503, "store_unavailable", str(exc)) from exc
    flash(request, f"notify_{status}", "ok" if status != "failed" else "error")
    return RedirectResponse(f"/tickets/{view.number}", status_code=303)


async def reveal_contact(request: Request) -> Response:
    """Decrypted phone for a call back (form fallback of the API; the store audits it)."""
    user = require_user(request)
    console = console_of(request)
    view = await load_visible(console, user, request.path_params["number"])
    contact = await call(console.store.contact, view.number, user.actor)
    flash(request, "done_contact")
    context = await ticket_context(console, user, await call(console.store.get, view.number))
    return _page(request, console, context, contact=contact)


routes = [
    Route("/tickets/{number}", ticket_page, methods=["GET"]),
    Route("/tickets/{number}/do/{action}", ticket_action, methods=["POST"]),
    Route("/tickets/{number}/notify", retry_notification, methods=["POST"]),
    Route("/tickets/{number}/contact", reveal_contact, methods=["POST"]),
]
