"""Work lists: the dispatcher's queue, the department's queue, the 待回电 list.

One function, :func:`find`, answers every list (pages and ``GET /api/tickets``)
so filters, pagination and the department boundary are implemented once. The
boundary is the store's: department staff list with their own ``Actor`` and the
store returns only their department's tickets (a request for another
department is refused).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from bot.console.accounts import CENTRE_ROLES, DISPATCH_ROLES, User
from bot.console.core import Console, Refused, call, console_of, render, require_user
from bot.console.notify import needs_call_back
from bot.console.tickets import is_overdue
from bot.tickets import lifecycle
from bot.tickets.models import Status, TicketView

QUEUES = ("dispatch", "department", "callbacks", "all")
#: most tickets one list request looks at (filters are applied to these)
LIST_CAP = 5000
PER_PAGE = 25
MAX_PER_PAGE = 100
MAX_PAGE = 10_000
QUERY_MAX = 100
CALL_BACK_STATUSES = (Status.REPLIED, Status.FOLLOW_UP)


@dataclass(frozen=True)
class Filters:
    queue: str = "department"
    status: str = "open"
    department: str | None = None
    channel: str | None = None
    q: str | None = None
    place: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    overdue: bool = False
    page: int = 1
    per_page: int = PER_PAGE

    def as_query(self, **changes: Any) -> str:
        """The query string of this list with some values changed (pager links)."""
        values = {
            "queue": self.queue,
            "status": self.status,
            "department": self.department or "",
            "channel": self.channel or "",
            "q": self.q or "",
            "place": self.place or "",
            "date_from": self.date_from.isoformat() if self.date_from else "",
            "date_to": self.date_to.isoformat() if self.date_to else "",
            "overdue": "1" if self.overdue else "",
            "page": str(self.page),
            "per_page": str(self.per_page),
        }
        values.update({k: str(v) for k, v in changes.items()})
        return str(QueryParams({k: v for k, v in values.items() if v}))


def _int(params: QueryParams, name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise Refused(400, "bad_param", name)
    return int(raw)


def _text(params: QueryParams, name: str) -> str | None:
    raw = (params.get(name) or "").strip()
    if len(raw) > QUERY_MAX:
        raise Refused(400, "bad_param", name)
    return raw or None


def _date(params: QueryParams, name: str) -> date | None:
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise Refused(400, "bad_param", name) from exc


def parse_filters(params: QueryParams, default_queue: str) -> Filters:
    """Validate list parameters; anything malformed is a clear 400."""
    queue = params.get("queue") or default_queue
    if queue not in QUEUES:
        raise Refused(400, "bad_param", "queue")
    status = params.get("status") or "open"
    if status not in ("open", "all", *(s.value for s in Status)):
        raise Refused(400, "bad_param", "status")
    return Filters(
        queue=queue,
        status=status,
        department=_text(params, "department"),
        channel=_text(params, "channel"),
        q=_text(params, "q"),
        place=_text(params, "place"),
        date_from=_date(params, "date_from"),
        date_to=_date(params, "date_to"),
        overdue=params.get("overdue") in ("1", "true", "on"),
        page=_int(params, "page", 1, 1, MAX_PAGE),
        per_page=_int(params, "per_page", PER_PAGE, 1, MAX_PER_PAGE),
    )


def _select(console: Console, user: User, f: Filters) -> list[TicketView]:
    """The matching tickets in queue order (blocking: run in the thread pool)."""
    store = console.store
    if f.queue == "dispatch":
        if user.role not in CENTRE_ROLES:
            raise Refused(403, "role_forbidden")
        views = store.list(status=Status.RECEIVED, query=f.q, limit=LIST_CAP, actor=user.actor)
        views.sort(key=lambda v: (v.created_at, v.number))
    elif f.queue == "callbacks":
        views = [
            v
            for v in store.list(channel=f.channel, query=f.q, limit=LIST_CAP, actor=user.actor)
            if v.status in CALL_BACK_STATUSES and needs_call_back(v.sender_id)
        ]
        views.sort(key=lambda v: (v.replied_at or v.updated_at, v.number))
    else:
        status = None if f.status in ("open", "all") else Status(f.status)
        views = store.list(
            status=status,
            department=f.department,
            channel=f.channel,
            query=f.q,
            limit=LIST_CAP,
            actor=user.actor,
        )
        if f.status == "open":
            views = [v for v in views if v.status in lifecycle.OPEN]
        views.sort(key=lambda v: (v.deadline, v.number))
    now = datetime.now(store.tz)
    if f.place:
        views = [v for v in views if v.place and f.place in v.place]
    if f.date_from:
        views = [v for v in views if v.created_at.date() >= f.date_from]
    if f.date_to:
        views = [v for v in views if v.created_at.date() <= f.date_to]
    if f.overdue:
        views = [v for v in views if is_overdue(v, now)]
    return views


def row(console: Console, view: TicketView, now: datetime) -> dict[str, Any]:
    """A list row for the API (what the pages' refresh reads): masked, JSON-able."""
    threshold = console.settings.routing_threshold
    confidence = view.category_confidence
    return {
        **view.public_dict(),
        "predicted_category": view.predicted_category,
        "category_confidence": confidence,
        "low_confidence": confidence is None or confidence < threshold,
        "suggested_department": console.suggested_department(view.predicted_category),
        "overdue": is_overdue(view, now),
    }


async def find(console: Console, user: User, f: Filters) -> tuple[list[TicketView], int]:
    """One page of tickets and the total count."""
    views = await call(_select, console, user, f)
    start = (f.page - 1) * f.per_page
    return views[start : start + f.per_page], len(views)


async def home(request: Request) -> Response:
    user = require_user(request)
    target = "/queue/dispatch" if user.role in DISPATCH_ROLES else "/queue/department"
    return RedirectResponse(target, status_code=303)


async def _list_page(request: Request, queue: str, template: str) -> Response:
    user = require_user(request)
    console = console_of(request)
    f = parse_filters(request.query_params, queue)
    f = dataclasses.replace(f, queue=queue)
    views, total = await find(console, user, f)
    now = datetime.now(console.store.tz)
    context: dict[str, Any] = {
        "tickets": views,
        "total": total,
        "filters": f,
        "pages": max(1, -(-total // f.per_page)),
        "overdue": {v.number: is_overdue(v, now) for v in views},
        "departments": console.departments,
        "categories": console.categories,
        "statuses": [s.value for s in Status],
        "threshold": console.settings.routing_threshold,
    }
    if queue == "dispatch":
        context["suggested"] = {
            v.number: console.suggested_department(v.predicted_category) for v in views
        }
        duplicates: dict[str, list[TicketView]] = {}
        for view in views:
            for other in view.probable_duplicates[:3]:
                try:
                    duplicates.setdefault(view.number, []).append(
                        await call(console.store.get, other)
                    )
                except Refused:
                    continue
        context["duplicates"] = duplicates
    if queue == "callbacks":
        context["failed"] = await call(console.accounts.failed_notifications)
    return render(request, template, **context)


async def dispatch_queue(request: Request) -> Response:
    require_user(request, roles=CENTRE_ROLES)
    return await _list_page(request, "dispatch", "queue_dispatch.html")


async def department_queue(request: Request) -> Response:
    return await _list_page(request, "department", "queue_department.html")


async def callbacks(request: Request) -> Response:
    return await _list_page(request, "callbacks", "callbacks.html")


routes = [
    Route("/", home, methods=["GET"]),
    Route("/queue/dispatch", dispatch_queue, methods=["GET"]),
    Route("/queue/department", department_queue, methods=["GET"]),
    Route("/callbacks", callbacks, methods=["GET"]),
]
