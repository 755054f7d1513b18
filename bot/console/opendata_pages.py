"""``/open-data``: the public statistics page and its downloads (no login).

The page and the files are built by :mod:`bot.supervision.opendata` (categorical values
only, cells under k = 5 suppressed, complementary suppression); nothing here
touches a ticket's text or personal data. Public, so it is cacheable and
carries no session-specific content besides the empty header.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.console.core import Console, Refused, call, console_of, render
from bot.supervision import opendata
from bot.supervision.stats import load_facts

MAX_DAYS = 366
DEFAULT_DAYS = 30


def _params(request: Request, console: Console) -> tuple[date, date, str]:
    now = console.store.clock()
    last = opendata.latest_until(now, console.store.tz)
    q = request.query_params
    try:
        until = date.fromisoformat(q.get("until") or last.isoformat())
        since = date.fromisoformat(
            q.get("since") or (until - timedelta(days=DEFAULT_DAYS - 1)).isoformat()
        )
    except ValueError as exc:
        raise Refused(400, "bad_request", "since/until: YYYY-MM-DD") from exc
    period = q.get("period") or "day"
    if since > until or (until - since).days >= MAX_DAYS or period not in opendata.PERIODS:
        raise Refused(
            400, "bad_request", f"since ≤ until, ≤ {MAX_DAYS} days, period day|week|month|all"
        )
    try:
        opendata.check_window(since, until, now, console.store.tz)
    except ValueError as exc:
        raise Refused(400, "bad_request", str(exc)) from exc
    return since, until, period


def _export(console: Console, since: date, until: date, period: str, fmt: str) -> str:
    store = console.store
    return opendata.export(
        lambda a, b: load_facts(store.engine, store.tz, a, b),
        store.tz,
        since=since,
        until=until,
        categories=frozenset(store.routing.categories),
        period=period,
        fmt=fmt,
        now=store.clock(),
    )


def _cells(console: Console, since: date, until: date) -> list[opendata.Cell]:
    store = console.store
    tz = store.tz
    start = datetime.combine(since, datetime.min.time(), tzinfo=tz)
    end = datetime.combine(until + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    return opendata.aggregate(
        load_facts(store.engine, tz, start, end),
        since=since,
        until=until,
        categories=frozenset(store.routing.categories),
        period="all",
    )


async def page(request: Request) -> Response:
    console = console_of(request)
    since, until, _ = _params(request, console)
    cells = await call(_cells, console, since, until)
    rows = opendata.rows(cells)
    groups = {dim: [r for r in rows if r["dimension"] == dim] for dim in opendata.DIMENSIONS}
    total = next((r for r in rows if r["dimension"] == "all"), None)
    response = render(
        request,
        "supervision/open_data.html",
        since=since.isoformat(),
        until=until.isoformat(),
        groups=groups,
        total=total,
        k=opendata.K,
        latest=opendata.latest_until(console.store.clock(), console.store.tz).isoformat(),
    )
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


async def download(request: Request) -> Response:
    console = console_of(request)
    fmt = request.path_params["fmt"]
    if fmt not in ("csv", "json"):
        raise Refused(404, "not_found")
    since, until, period = _params(request, console)
    text = await call(_export, console, since, until, period, fmt)
    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/json"
    name = f"open-data_{period}_{since.isoformat()}_{until.isoformat()}.{fmt}"
    return Response(
        text,
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "public, max-age=300",
            "Access-Control-Allow-Origin": "*",
        },
    )


routes = [
    Route("/open-data", page, methods=["GET"]),
    Route("/open-data/data.{fmt}", download, methods=["GET"]),
]
