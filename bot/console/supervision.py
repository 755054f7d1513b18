"""督办监督 supervisor dashboard: volume, SLA league, satisfaction, hot spots, warnings.

Supervisors and admins only (``require_user(roles=...)``, the console's own
auth). Every chart on ``/supervision`` is drawn by ECharts from a JSON API
below and has, beside it, a server-rendered table of the same numbers and a
CSV download — the table is what a screen reader, a printout or a test reads.
All numbers come from :mod:`bot.supervision.stats`, :mod:`bot.supervision.hotspots` and
:mod:`bot.supervision.surge`; this module only shapes them for the web.

People read channels by name (微信, 网页, 电话, Telegram): the page, the charts
and the CSV files show :func:`labelled_volume`, where the channels people call
by one name (``webchat``, ``rest``, ``socketio`` are all 网页) are one series,
and statuses in words. The JSON API keeps the codes.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.console import wording
from bot.console.accounts import SUPERVISION_ROLES
from bot.console.core import Console, Refused, call, console_of, render, require_user
from bot.supervision import stats, surge

#: longest period one dashboard request may cover (keeps a request cheap)
MAX_DAYS = 366
DEFAULT_DAYS = 30
CSV_NAMES = (
    "volume-category",
    "volume-department",
    "volume-district",
    "volume-channel",
    "departments",
    "overdue",
    "escalated",
    "hotspots",
    "warnings",
)


def _now(console: Console) -> datetime:
    return console.store.clock().astimezone(console.store.tz)


def period(request: Request, console: Console) -> tuple[date, date]:
    """``since``/``until`` query parameters (local days), default the last 30 days."""
    today = _now(console).date()
    try:
        until = date.fromisoformat(request.query_params.get("until") or today.isoformat())
        since = date.fromisoformat(
            request.query_params.get("since")
            or (until - timedelta(days=DEFAULT_DAYS - 1)).isoformat()
        )
    except ValueError as exc:
        raise Refused(
            400,
            "bad_request",
            "since/until: YYYY-MM-DD",
            reason="bad_period",
            params={"days": str(MAX_DAYS)},
        ) from exc
    if since > until or (until - since).days >= MAX_DAYS:
        raise Refused(
            400,
            "bad_request",
            f"since ≤ until, at most {MAX_DAYS} days",
            reason="bad_period",
            params={"days": str(MAX_DAYS)},
        )
    return since, until


def _facts(console: Console, since: date, until: date) -> list[stats.Fact]:
    tz = console.store.tz
    start = datetime.combine(since, datetime.min.time(), tzinfo=tz)
    end = datetime.combine(until + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    return stats.load_facts(console.store.engine, tz, start, end)


def _all_open(console: Console) -> list[stats.Fact]:
    """Every ticket (overdue and escalated lists are not limited to the period)."""
    return [
        f
        for f in stats.load_facts(console.store.engine, console.store.tz)
        if f.status in stats.OPEN
    ]


def _fact_row(f: stats.Fact, now: datetime) -> dict[str, Any]:
    return {
        "number": f.number,
        "category": f.category,
        "department": f.department,
        "district": f.district,
        "status": f.status,
        "created_at": f.created_at.isoformat(),
        "deadline": f.deadline.isoformat(),
        "overdue_hours": round(max((now - f.deadline).total_seconds(), 0) / 3600, 1),
        "escalated_at": f.escalated_at.isoformat() if f.escalated_at else None,
    }


def _hotspots(console: Console, top: int = 10) -> list[dict[str, Any]]:
    """Hot spots of open complaints, cached until a ticket changes."""
    from bot.supervision.hotspots import find_hotspots
    from bot.supervision.tickets import open_complaints
    from bot.tickets.queries import change_marker

    key = change_marker(console.store.engine)
    cache = console.extras.setdefault("hotspot_cache", {})
    if cache.get("key") != key:
        now = _now(console)
        spots = find_hotspots(open_complaints(console.store.engine), now=now, top=top)
        cache.update(key=key, value=[s.to_dict() for s in spots])
    return list(cache["value"])


def dashboard_data(console: Console, since: date, until: date) -> dict[str, Any]:
    """Everything the dashboard shows, as JSON-able data (the API and the page share it)."""
    now = _now(console)
    facts = _facts(console, since, until)
    open_facts = _all_open(console)
    warnings_sent = surge.recorded(console.store.engine, limit=50)
    today = now.date()
    window = datetime.combine(
        today - timedelta(days=surge.WINDOW), datetime.min.time(), tzinfo=console.store.tz
    )
    recent = stats.load_facts(console.store.engine, console.store.tz, window)
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "now": now.isoformat(),
        "total": len(facts),
        "volume": {d: stats.volume(facts, d, since, until) for d in stats.DIMENSIONS},
        "departments": stats.departments(facts, now),
        "overdue": [_fact_row(f, now) for f in stats.overdue(open_facts, now)],
        "escalated": [_fact_row(f, now) for f in stats.escalated(open_facts)],
        "hotspots": _hotspots(console),
        "surges_today": [s.to_dict() for s in surge.detect(recent, today)],
        "warnings": warnings_sent,
        "rule": {
            "window_days": surge.WINDOW,
            "alpha": surge.ALPHA,
            "min_count": surge.MIN_COUNT,
            "floor": surge.FLOOR,
        },
    }


def labelled_volume(volume: dict[str, Any], name_of: Any) -> dict[str, Any]:
    """A volume with its series named for people; series of one name are added up."""
    merged: dict[str, list[int]] = {}
    for s in volume["series"]:
        counts = merged.setdefault(name_of(s["name"]), [0] * len(volume["days"]))
        for i, n in enumerate(s["counts"]):
            counts[i] += n
    ordered = sorted(merged.items(), key=lambda kv: (-sum(kv[1]), kv[0]))
    return {
        **volume,
        "series": [{"name": k, "counts": v, "total": sum(v)} for k, v in ordered],
    }


def for_people(console: Console, data: dict[str, Any]) -> dict[str, Any]:
    """The dashboard's data as the page and the CSV files show it (channels by name)."""
    M = console.messages
    volume = dict(data["volume"])
    volume["channel"] = labelled_volume(volume["channel"], lambda c: wording.channel_name(M, c))
    rows = {
        name: [{**r, "status": wording.status_name(M, r["status"])} for r in data[name]]
        for name in ("overdue", "escalated")
    }
    return {**data, "volume": volume, **rows}


async def page(request: Request) -> Response:
    require_user(request, roles=SUPERVISION_ROLES)
    console = console_of(request)
    since, until = period(request, console)
    data = await call(dashboard_data, console, since, until)
    names = {
        s["name"]: wording.channel_name(console.messages, s["name"])
        for s in data["volume"]["channel"]["series"]
    }
    return render(
        request,
        "supervision/dashboard.html",
        d=for_people(console, data),
        csv_names=CSV_NAMES,
        channel_labels=json.dumps(names, ensure_ascii=False),
    )


async def api_dashboard(request: Request) -> Response:
    require_user(request, roles=SUPERVISION_ROLES)
    console = console_of(request)
    since, until = period(request, console)
    return JSONResponse(await call(dashboard_data, console, since, until))


def csv_rows(data: dict[str, Any], name: str) -> tuple[list[str], list[list[Any]]]:
    """The table behind one chart, as CSV header and rows."""
    if name.startswith("volume-"):
        volume = data["volume"][name.removeprefix("volume-")]
        header = ["day", *[s["name"] for s in volume["series"]], "total"]
        body = []
        for i, day in enumerate(volume["days"]):
            counts = [s["counts"][i] for s in volume["series"]]
            body.append([day, *counts, sum(counts)])
        return header, body
    if name == "departments":
        keys = [
            "rank",
            "department",
            "tickets",
            "open",
            "closed",
            "median_response_hours",
            "median_resolution_hours",
            "on_time",
            "breached",
            "sla_compliance",
            "rated",
            "mean_rating",
            "satisfied_pct",
        ]
        return keys, [[r[k] for k in keys] for r in data["departments"]]
    if name in ("overdue", "escalated"):
        keys = [
            "number",
            "category",
            "department",
            "district",
            "status",
            "created_at",
            "deadline",
            "overdue_hours",
            "escalated_at",
        ]
        return keys, [[r[k] for k in keys] for r in data[name]]
    if name == "hotspots":
        keys = ["label", "district", "count", "likes", "heat", "latest"]
        return [*keys, "keywords"], [
            [*[r[k] for k in keys], " ".join(r["keywords"])] for r in data["hotspots"]
        ]
    keys = [
        "id",
        "category",
        "district",
        "first_day",
        "last_day",
        "count",
        "baseline",
        "p_value",
        "created_at",
        "acknowledged_at",
        "acknowledged_by",
    ]
    return keys, [[r[k] for k in keys] for r in data["warnings"]]


async def download(request: Request) -> Response:
    require_user(request, roles=SUPERVISION_ROLES)
    console = console_of(request)
    name = request.path_params["name"]
    if name not in CSV_NAMES:
        raise Refused(404, "not_found")
    since, until = period(request, console)
    data = await call(dashboard_data, console, since, until)
    header, body = csv_rows(for_people(console, data), name)
    out = io.StringIO()
    out.write("\ufeff")  # Excel opens UTF-8 Chinese correctly only with a BOM
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(body)
    filename = f"{name}_{since.isoformat()}_{until.isoformat()}.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def acknowledge(request: Request) -> Response:
    user = require_user(request, roles=SUPERVISION_ROLES)
    console = console_of(request)
    try:
        warning_id = int(request.path_params["id"])
    except ValueError as exc:
        raise Refused(404, "not_found") from exc
    done = await call(
        surge.acknowledge, console.store.engine, warning_id, user.username, _now(console)
    )
    if not done:
        raise Refused(409, "conflict", "unknown or already acknowledged", reason="warning_gone")
    return JSONResponse({"acknowledged": warning_id})


async def api_warnings(request: Request) -> Response:
    """The supervisors' notification list (unacknowledged first-day warnings)."""
    require_user(request, roles=SUPERVISION_ROLES)
    console = console_of(request)
    unread = request.query_params.get("unread") in ("1", "true")
    items = await call(surge.recorded, console.store.engine, 100, unread)
    return JSONResponse(
        {"warnings": items, "unread": sum(1 for w in items if not w["acknowledged_at"])}
    )


routes = [
    Route("/supervision", page, methods=["GET"]),
    Route("/supervision/csv/{name}.csv", download, methods=["GET"]),
    Route("/api/supervision/dashboard", api_dashboard, methods=["GET"]),
    Route("/api/supervision/warnings", api_warnings, methods=["GET"]),
    Route("/api/supervision/warnings/{id}/ack", acknowledge, methods=["POST"]),
]
