"""What every console route needs: the store, the accounts, templates, refusals.

Routes stay small by leaning on four helpers here: :func:`console_of` (the
shared state), :func:`require_user` (who asks, and may they), :func:`call`
(run a blocking store call off the event loop) and :class:`Refused` (a clear
4xx that the app turns into an HTML page or a JSON body). People read messages
by *code*: the Chinese texts live in ``templates/messages.json``, not here.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.templating import Jinja2Templates

from bot.console import wording
from bot.console.accounts import Accounts, User
from bot.settings import Settings
from bot.tickets.errors import (
    ConflictError,
    IllegalTransition,
    InvalidInput,
    PermissionDenied,
    TicketError,
    TicketNotFound,
)
from bot.tickets.store import TicketStore

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
T = TypeVar("T")


class Refused(Exception):
    """A request refused with a clear status and message code; nothing was changed.

    ``code`` is the API's error code (a contract: machines read it). People read
    the message of ``reason`` (default: ``code``), a more precise key of
    ``messages.json`` filled with ``params`` (:func:`bot.console.wording.explain`);
    ``extra`` adds fields to the JSON error (a conflict's ``changes``).
    """

    def __init__(
        self,
        status: int,
        code: str,
        detail: str = "",
        *,
        reason: str | None = None,
        params: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.reason = reason or code
        self.params = dict(params or {})
        self.extra = dict(extra or {})


def store_refusal(exc: TicketError) -> Refused:
    """The store's refusals as HTTP statuses (the store changed nothing)."""
    reason, params = wording.store_text(exc)
    if isinstance(exc, TicketNotFound):
        status, code = 404, "not_found"
    elif isinstance(exc, PermissionDenied):
        status, code = 403, "forbidden"
    elif isinstance(exc, ConflictError):
        status, code = 409, "conflict"
    elif isinstance(exc, IllegalTransition):
        status, code = 409, "illegal"
    elif isinstance(exc, InvalidInput):
        status, code = 422, "invalid"
    else:
        status, code = 503, "store_unavailable"
    return Refused(status, code, str(exc), reason=reason, params=params)


def load_messages() -> dict[str, str]:
    """Message code → text shown to staff (Chinese), from the templates directory."""
    return json.loads((TEMPLATES / "messages.json").read_text(encoding="utf-8"))


@dataclass
class Console:
    """Process-wide state of the console app (``app.state.console``)."""

    settings: Settings
    store: TicketStore
    accounts: Accounts
    templates: Jinja2Templates
    messages: dict[str, str]
    extras: dict[str, Any] = field(default_factory=dict)

    def text(self, code: str) -> str:
        return self.messages.get(code, code)

    def explain(self, refusal: Refused) -> str:
        """The sentence staff read for a refusal: what happened, what to do next."""
        try:
            departments = self.departments
        except TicketError:  # the store is down: the message says so without the list
            departments = []
        return wording.explain(
            self.messages, refusal.reason, refusal.detail, refusal.params, departments
        )

    @property
    def departments(self) -> list[str]:
        return self.store.departments()

    @property
    def categories(self) -> list[str]:
        return list(self.store.routing.categories)

    def suggested_department(self, category: str | None) -> str | None:
        route = self.store.routing.categories.get(category or "")
        return route.department if route else None


def local_time(value: str | None, tz: ZoneInfo) -> str:
    """An ISO time (audit events, transcripts) as staff read it: local, to the minute."""
    if not value:
        return ""
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)[:16]
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(tz)
    return parsed.strftime("%Y-%m-%d %H:%M")


def make_templates(timezone: str = "Asia/Shanghai") -> Jinja2Templates:
    tz = ZoneInfo(timezone)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,  # citizens' text is shown as text, always
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["local"] = lambda value: local_time(value, tz)
    # people, channels and fields by name (templates/messages.json), never by code
    messages = load_messages()
    env.globals["who"] = lambda event: wording.event_actor(messages, event)
    env.globals["actor_name"] = lambda role, name, department=None: wording.actor_name(
        messages, role, name, department
    )
    env.globals["channel_name"] = lambda channel: wording.channel_name(messages, channel)
    env.globals["reason_text"] = lambda reason: wording.reason_text(messages, reason)
    env.globals["facts_view"] = lambda facts: wording.facts_view(messages, facts, tz)
    env.globals["tech_detail"] = wording.developer_detail
    return Jinja2Templates(env=env)


def console_of(request: Request) -> Console:
    return request.app.state.console


def user_of(request: Request) -> User | None:
    return getattr(request.state, "user", None)


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def require_user(
    request: Request, *, roles: frozenset[str] | None = None, allow_stale: bool = False
) -> User:
    """The signed-in user, refused when absent, disabled or not in ``roles``.

    A user who must change their one-time password may do nothing else
    (``allow_stale`` is for the password page itself and logout).
    """
    user = user_of(request)
    if user is None:
        raise Refused(401, "login_required")
    by_token = getattr(request.state, "auth_via", None) == "token"
    if user.must_change_password and not allow_stale and not by_token:
        raise Refused(403, "password_change_required")
    if roles is not None and user.role not in roles:
        raise Refused(403, "role_forbidden")
    return user


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking store/accounts call in the thread pool; store errors become 4xx."""
    try:
        return await run_in_threadpool(fn, *args, **kwargs)
    except TicketError as exc:
        raise store_refusal(exc) from exc


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use (also before login)."""
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


def flash(
    request: Request, code: str, kind: str = "ok", detail: str = "", text: str = ""
) -> None:
    """A message shown once on the next page (after a redirect).

    ``text`` is the sentence to show when it was already worded (a refusal
    explained with its parameters); otherwise the page words ``code`` itself.
    """
    items = list(request.session.get("flash", []))[-4:]
    items.append({"code": code, "kind": kind, "detail": detail[:300], "text": text[:200]})
    request.session["flash"] = items


def flash_refusal(request: Request, refusal: Refused) -> None:
    """A refusal shown on the page this request renders (not kept in the session cookie)."""
    shown = list(getattr(request.state, "flashes", []))
    shown.append(
        {
            "code": refusal.code,
            "kind": "error",
            "detail": refusal.detail[:300],
            "text": console_of(request).explain(refusal),
        }
    )
    request.state.flashes = shown


def _worded(console: Console, item: dict[str, Any]) -> dict[str, Any]:
    """A stored flash as shown: its sentence, and any developer detail for the fold."""
    code, detail = str(item.get("code", "")), str(item.get("detail") or "")
    kind = item.get("kind", "ok")
    text = item.get("text") or (
        console.explain(Refused(400, code, detail))
        if kind == "error"
        else console.messages.get(code) or console.text("done")
    )
    technical = wording.developer_detail(detail, code, text) if kind == "error" else ""
    return {"code": code, "kind": kind, "text": text, "detail": technical}


def render(request: Request, name: str, status: int = 200, **context: Any) -> Any:
    console = console_of(request)
    flashes = request.session.pop("flash", []) if "session" in request.scope else []
    flashes = [*flashes, *getattr(request.state, "flashes", [])]
    flashes = [_worded(console, f) for f in flashes if isinstance(f, dict)]
    base = {
        "user": user_of(request),
        "csrf": csrf_token(request) if "session" in request.scope else "",
        "M": console.messages,
        "flashes": flashes,
        "path": request.url.path,
    }
    base.update(context)
    return console.templates.TemplateResponse(request, name, base, status_code=status)
