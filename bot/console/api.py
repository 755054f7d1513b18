"""The console's JSON API (``/api/...``), used by the pages and by machines.

Same rules as the pages: a session cookie (with the CSRF header on changes) or
``Authorization: Bearer <token>`` (``citizenbot users token NAME``); the same
:func:`bot.console.tickets.perform` for every change; personal data masked
except through the audited contact endpoint. Documented in
``docs/console-openapi.yaml``, served at ``/api/openapi.json``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import yaml
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.console.core import Refused, call, console_of, require_user
from bot.console.queues import find, parse_filters, row
from bot.console.security import json_body
from bot.console.tickets import (
    ACTIONS,
    load_visible,
    notification_task,
    perform,
    ticket_context,
)
from bot.settings import ROOT

OPENAPI = ROOT / "docs" / "console-openapi.yaml"


def _json(data: Any, status: int = 200, background: BackgroundTask | None = None) -> Response:
    return JSONResponse(data, status_code=status, background=background)


async def me(request: Request) -> Response:
    user = require_user(request, allow_stale=True)
    return _json(user.public_dict())


async def list_tickets(request: Request) -> Response:
    user = require_user(request)
    console = console_of(request)
    default = "department"
    f = parse_filters(request.query_params, default)
    views, total = await find(console, user, f)
    now = datetime.now(console.store.tz)
    return _json(
        {
            "items": [row(console, v, now) for v in views],
            "page": f.page,
            "per_page": f.per_page,
            "total": total,
            "pages": max(1, -(-total // f.per_page)),
        }
    )


def _detail(console: Any, context: dict[str, Any]) -> dict[str, Any]:
    view = context["ticket"]
    now = datetime.now(console.store.tz)
    due = context["follow_up_due"]
    return {
        **row(console, view, now),
        "transcript": list(view.transcript),
        "facts": view.facts,
        "rating_comment": view.rating_comment,
        "history": context["history"],
        "notes": [n["payload"].get("text", "") for n in context["notes"]],
        "actions": context["actions"],
        "notification": context["notification"],
        "follow_up_due": due.isoformat() if due else None,
    }


async def get_ticket(request: Request) -> Response:
    user = require_user(request)
    console = console_of(request)
    view = await load_visible(console, user, request.path_params["number"])
    context = await ticket_context(console, user, view)
    return _json(_detail(console, context))


async def _body(request: Request) -> dict[str, Any]:
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            return json_body(await request.body())
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            raise Refused(400, "bad_json") from exc
    return dict(await request.form())


async def act(request: Request) -> Response:
    user = require_user(request)
    console = console_of(request)
    name = request.path_params["action"]
    if name not in ACTIONS:
        raise Refused(404, "unknown_action")
    data = await _body(request)
    view = await perform(console, user, request.path_params["number"], name, data)
    task = notification_task(console, view.number, name)
    context = await ticket_context(console, user, view)
    body = _detail(console, context)
    body["notification_scheduled"] = task is not None
    return _json(body, background=task)


async def contact(request: Request) -> Response:
    """Decrypted contact details for a call back; the store records who looked."""
    user = require_user(request)
    console = console_of(request)
    view = await load_visible(console, user, request.path_params["number"])
    found = await call(console.store.contact, view.number, user.actor)
    return _json({"phone": found.phone, "name": found.name, "id_number": found.id_number})


async def notify(request: Request) -> Response:
    """Retry telling the citizen (waits for Rasa, with the notify timeout)."""
    user = require_user(request)
    console = console_of(request)
    view = await load_visible(console, user, request.path_params["number"])
    record = await call(console.accounts.notification, view.number)
    event = record["event"] if record else ("close" if view.status.value == "closed" else "reply")
    status = await console.extras["notifier"].notify(view.number, event)
    return _json(
        {"status": status, "notification": await call(console.accounts.notification, view.number)}
    )


async def departments(request: Request) -> Response:
    require_user(request)
    console = console_of(request)
    return _json({"departments": console.departments, "categories": console.categories})


async def openapi(request: Request) -> Response:
    """The OpenAPI document (public, like any API description)."""
    if not OPENAPI.exists():
        raise Refused(404, "not_found")
    return Response(
        json.dumps(yaml.safe_load(OPENAPI.read_text(encoding="utf-8")), ensure_ascii=False),
        media_type="application/json",
    )


routes = [
    Route("/api/me", me, methods=["GET"]),
    Route("/api/openapi.json", openapi, methods=["GET"]),
    Route("/api/departments", departments, methods=["GET"]),
    Route("/api/tickets", list_tickets, methods=["GET"]),
    Route("/api/tickets/{number}", get_ticket, methods=["GET"]),
    Route("/api/tickets/{number}/actions/{action}", act, methods=["POST"]),
    Route("/api/tickets/{number}/contact", contact, methods=["POST"]),
    Route("/api/tickets/{number}/notify", notify, methods=["POST"]),
]
