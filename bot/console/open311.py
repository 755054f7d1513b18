"""Open311 GeoReport v2 (``/open311/v2/...``): civic apps file and follow reports.

Mapping onto our tickets (``docs/open311.md``):

* ``service_code`` = category key of ``data/routing/departments.yml``;
  ``service_name`` = the same (Chinese) name; ``group`` = the department.
* ``service_request_id`` = ticket number; ``status`` = ``open`` for every open
  status, ``closed`` for 办结 and merged tickets (``status_notes`` says which).
* Only public tickets are listed or shown: those filed over Open311 and those
  staff published a note for. ``status_notes`` = that public note; no other
  text (``description`` is empty, no reply, place, coordinates or photo link);
  ``address`` = the district only (a place can be a citizen's home).
* ``POST requests`` needs a valid ``api_key`` (``citizenbot open311 key add``),
  else 403 in the GeoReport error format. The report becomes a ticket
  (channel ``open311``, kind complaint, category = service_code with
  confidence 1: the citizen chose it, so it is dispatched at once). A
  client-supplied id (``client_request_id`` parameter or ``Idempotency-Key``
  header) makes the POST idempotent per client.

Why outside the console's middleware: these are cookie-less machine
endpoints with their own key check; the console's CSRF check (right for
session-authenticated forms) would refuse every civic app's POST. So
:func:`install` puts a small gate in front of the app that routes
``/open311/`` straight here, with the same security headers.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any
from xml.etree import ElementTree as ET

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.console.core import Console
from bot.supervision import apikeys
from bot.supervision.districts import district_table
from bot.supervision.texts import public_texts
from bot.tickets.errors import TicketError, TicketNotFound
from bot.tickets.models import NewTicket, Status, TicketView

UTC = timezone.utc
PREFIX = "/open311/"
#: the channel of tickets filed over GeoReport: public by the way they were filed
OPEN311 = "open311"
CLOSED = frozenset({"closed", "merged"})
MAX_REQUESTS = 1000
DEFAULT_DAYS = 90
MAX_BODY = 100_000
#: GeoReport v2 fields of a service request, in the spec's order
REQUEST_FIELDS = (
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
)
SERVICE_FIELDS = (
    "service_code",
    "service_name",
    "description",
    "metadata",
    "type",
    "keywords",
    "group",
)
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Access-Control-Allow-Origin": "*",
}


class GeoError(Exception):
    """A refusal in the GeoReport error format (``[{"code", "description"}]``)."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def _xml(root: str, item: str, rows: list[dict[str, Any]]) -> str:
    top = ET.Element(root)
    for row in rows:
        el = ET.SubElement(top, item)
        for key, value in row.items():
            child = ET.SubElement(el, key)
            if value is None:
                continue
            if isinstance(value, bool):
                child.text = "true" if value else "false"
            else:
                child.text = str(value)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(top, encoding="unicode")


def _answer(
    fmt: str, root: str, item: str, rows: list[dict[str, Any]], status: int = 200
) -> Response:
    if fmt == "xml":
        return Response(_xml(root, item, rows), status, HEADERS, "text/xml; charset=utf-8")
    return Response(
        json.dumps(rows, ensure_ascii=False), status, HEADERS, "application/json; charset=utf-8"
    )


def error(fmt: str, status: int, description: str) -> Response:
    return _answer(fmt, "errors", "error", [{"code": status, "description": description}], status)


def _split(name: str) -> tuple[str, str]:
    stem, dot, fmt = name.rpartition(".")
    if not dot or fmt not in ("json", "xml"):
        raise GeoError(404, "unknown format: use .json or .xml")
    return stem, fmt


def _console(request: Request) -> Console:
    return request.app.state.console


# -- services ------------------------------------------------------------------------


def services_rows(console: Console) -> list[dict[str, Any]]:
    rows = []
    for code, route in console.store.routing.categories.items():
        rows.append(
            {
                "service_code": code,
                "service_name": code,
                "description": public_texts().service_description.format(
                    category=code, department=route.department
                ),
                "metadata": False,
                "type": "realtime",
                "keywords": code,
                "group": route.department,
            }
        )
    return rows


async def services(request: Request) -> Response:
    _, fmt = _split("services." + request.path_params["fmt"])
    return _answer(fmt, "services", "service", services_rows(_console(request)))


async def discovery(request: Request) -> Response:
    base = str(request.base_url).rstrip("/")
    doc = {
        "changeset": "2026-11-27T00:00:00Z",
        "contact": public_texts().operator,
        "key_service": "citizenbot open311 key add LABEL (operator issues keys)",
        "endpoints": [
            {
                "specification": "http://wiki.open311.org/GeoReport_v2",
                "url": f"{base}/open311/v2",
                "changeset": "2026-11-27T00:00:00Z",
                "type": "production",
                "formats": ["application/json", "text/xml"],
            }
        ],
    }
    return Response(json.dumps(doc, ensure_ascii=False), 200, HEADERS, "application/json")


# -- requests ------------------------------------------------------------------------


def is_public(view: TicketView) -> bool:
    """Filed on the public tracker (Open311), or published by staff (a public note)."""
    return view.channel == OPEN311 or bool(view.public_note)


def request_row(console: Console, view: TicketView) -> dict[str, Any]:
    """A ticket as the public sees it: closed-list values, dates and the public note.

    No text a citizen or a member of staff wrote for the case (description,
    reply, place) and no coordinates or photo links: a GeoReport list is read by
    anyone, and those can name a person or their home. ``status_notes`` is the
    note staff wrote for publication (``TicketStore.publish``), nothing else.
    """
    tz = console.store.tz
    closed = view.status.value in CLOSED
    return {
        "service_request_id": view.number,
        "status": "closed" if closed else "open",
        "status_notes": view.public_note or None,
        "service_name": view.category,
        "service_code": view.category,
        "description": None,
        "agency_responsible": view.department,
        "service_notice": None,
        "requested_datetime": _iso(view.created_at.astimezone(tz)),
        "updated_datetime": _iso(view.updated_at.astimezone(tz)),
        "expected_datetime": None if closed else _iso(view.deadline.astimezone(tz)),
        "address": district_table().find(view.place, view.summary),
        "address_id": None,
        "zipcode": None,
        "lat": None,
        "long": None,
        "media_url": None,
    }


def _date(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise GeoError(400, f"{name}: ISO 8601 date expected") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def find_requests(console: Console, params: dict[str, str]) -> list[dict[str, Any]]:
    """The requests a GeoReport query asks for: filed through Open311, or published."""
    store = console.store
    ids = [x.strip() for x in (params.get("service_request_id") or "").split(",") if x.strip()]
    if ids:  # the spec: service_request_id overrides every other parameter
        views = store.find(numbers=ids[:MAX_REQUESTS], channels=[OPEN311], published=True,
                           limit=MAX_REQUESTS)
    else:
        end = _date(params.get("end_date"), "end_date") or store.clock()
        start = _date(params.get("start_date"), "start_date") or end - timedelta(days=DEFAULT_DAYS)
        wanted = {s.strip() for s in (params.get("status") or "").split(",") if s.strip()}
        if wanted - {"open", "closed"}:
            raise GeoError(400, "status: open or closed")
        statuses = None
        if wanted == {"open"}:
            statuses = [s for s in Status if s.value not in CLOSED]
        elif wanted == {"closed"}:
            statuses = [s for s in Status if s.value in CLOSED]
        codes = params.get("service_code")
        views = store.find(
            since=start, until=end, categories=codes.split(",") if codes else None,
            statuses=statuses, channels=[OPEN311], published=True, limit=MAX_REQUESTS,
        )
    return [request_row(console, view) for view in views]


async def requests_get(request: Request) -> Response:
    _, fmt = _split(request.path_params["name"])
    rows = await run_in_threadpool(find_requests, _console(request), dict(request.query_params))
    return _answer(fmt, "service_requests", "request", rows)


async def request_one(request: Request) -> Response:
    number, fmt = _split(request.path_params["name"])
    console = _console(request)
    try:
        view = await run_in_threadpool(console.store.get, number)
    except TicketNotFound as exc:
        raise GeoError(404, f"service_request_id {number} not found") from exc
    if not is_public(view):  # the same answer as a missing ticket
        raise GeoError(404, f"service_request_id {number} not found")
    return _answer(fmt, "service_requests", "request", [request_row(console, view)])


def _float(value: Any, name: str, low: float, high: float) -> float | None:
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise GeoError(400, f"{name}: a number is required") from exc
    if not low <= number <= high:
        raise GeoError(400, f"{name}: out of range")
    return number


def create_request(
    console: Console, client: str, form: dict[str, str], key: str | None
) -> TicketView:
    code = (form.get("service_code") or "").strip()
    if code not in console.store.routing.categories:
        raise GeoError(404, f"service_code {code!r} not found")
    lat = _float(form.get("lat"), "lat", -90, 90)
    lon = _float(form.get("long"), "long", -180, 180)
    address = (form.get("address_string") or "").strip()[:255]
    if (lat is None or lon is None) and not address and not form.get("address_id"):
        raise GeoError(400, "a location is required: lat and long, address_string or address_id")
    description = (form.get("description") or "").strip()[:4000]
    if not description:
        raise GeoError(400, "description is required")
    name = "".join(x.strip() for x in (form.get("last_name"), form.get("first_name")) if x)
    facts: dict[str, Any] = {"open311_client": client}
    if lat is not None and lon is not None:
        facts.update(lat=lat, long=lon)
    media = (form.get("media_url") or "").strip()
    if media.startswith(("http://", "https://")):
        facts["media_url"] = media[:500]
    try:
        return console.store.create(
            NewTicket(
                channel=OPEN311,
                kind="complaint",
                summary=description.split("\n")[0][:120],
                description=description,
                source=f"open311:{client}",
                idempotency_key=f"open311:{client}:{key}" if key else None,
                place=address or None,
                phone=(form.get("phone") or "").strip() or None,
                name=name or None,
                category=code,
                category_confidence=1.0,
                facts=facts,
            )
        )
    except TicketError as exc:
        raise GeoError(400, str(exc)) from exc


async def requests_post(request: Request) -> Response:
    _, fmt = _split(request.path_params["name"])
    console = _console(request)
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BODY:
        raise GeoError(413, "request too large")
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise GeoError(400, "send application/x-www-form-urlencoded or JSON")
    query_key = request.query_params.get("api_key")
    if query_key is not None:  # a key in the URL is checked before the body is read
        known = await run_in_threadpool(apikeys.client_for, console.store.engine, query_key)
        if known is None:
            raise GeoError(403, "api_key is missing or invalid")
    raw = await _read_capped(request, MAX_BODY)
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = json.loads(raw or b"{}")
        except ValueError as exc:
            raise GeoError(400, "malformed JSON") from exc
        form = {k: str(v) for k, v in body.items()} if isinstance(body, dict) else {}
    else:
        form = {key: str(value) for key, value in (await _form(request, raw)).items()}
    form = {**dict(request.query_params), **form}
    client = await run_in_threadpool(apikeys.client_for, console.store.engine, form.get("api_key"))
    if client is None:
        raise GeoError(403, "api_key is missing or invalid")
    key = (form.get("client_request_id") or request.headers.get("idempotency-key") or "").strip()
    view = await run_in_threadpool(create_request, console, client, form, key[:128] or None)
    row = {
        "service_request_id": view.number,
        "token": None,
        "service_notice": public_texts().request_accepted.format(number=view.number),
        "account_id": None,
    }
    return _answer(fmt, "service_requests", "request", [row], status=201)


async def _read_capped(request: Request, cap: int) -> bytes:
    """The body, read as it streams and refused as soon as it passes ``cap``."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise GeoError(413, "request too large")
        chunks.append(chunk)
    return b"".join(chunks)


async def _form(request: Request, raw: bytes) -> FormData:
    from urllib.parse import parse_qsl

    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise GeoError(400, "send application/x-www-form-urlencoded or JSON")
    pairs: list[tuple[str, str | UploadFile]] = list(
        parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
    )
    return FormData(pairs)


routes = [
    Route("/open311/discovery.json", discovery, methods=["GET"]),
    Route("/open311/v2/discovery.json", discovery, methods=["GET"]),
    Route("/open311/v2/services.{fmt}", services, methods=["GET"]),
    Route("/open311/v2/requests/{name}", request_one, methods=["GET"]),
    Route("/open311/v2/{name}", requests_get, methods=["GET"]),
    Route("/open311/v2/{name}", requests_post, methods=["POST"]),
]


def _fmt_of(path: str) -> str:
    return "xml" if path.endswith(".xml") else "json"


class Open311Gate:
    """Outermost ASGI layer: ``/open311/`` goes to the GeoReport router, the rest on."""

    def __init__(self, app: ASGIApp, parent: Starlette) -> None:
        self.app = app
        self.parent = parent
        self.router = Router(routes=routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        scope["app"] = self.parent  # request.app.state.console, as in the console
        fmt = _fmt_of(scope["path"])
        name = scope["path"].rsplit("/", 1)[-1]
        if (
            scope["path"].startswith("/open311/v2/")
            and name.rpartition(".")[0]
            not in (
                "services",
                "requests",
                "discovery",
            )
            and "/requests/" not in scope["path"]
        ):
            await error(fmt, 404, "not found")(scope, receive, send)
            return
        try:
            await self.router(scope, receive, send)
        except GeoError as exc:
            await error(fmt, exc.status, exc.description)(scope, receive, send)
        except HTTPException as exc:
            await error(fmt, exc.status_code, str(exc.detail))(scope, receive, send)


def install(app: Starlette) -> None:
    """Put the Open311 gate in front of the console app (call once, before serving)."""
    app.add_middleware(Open311Gate, parent=app)
