"""The console application: routes by area, the security middleware, error pages.

``create_app()`` is all a server (``python -m bot.console``) or a test
(Starlette's ``TestClient``) needs. Everything is served from here — templates,
CSS, JS — with no CDN, so the console works on a closed government network.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from bot.console import (
    api,
    auth,
    live,
    open311,
    opendata_pages,
    queues,
    supervision,
    tickets,
    upload,
    users,
)
from bot.console.accounts import Accounts
from bot.console.core import (
    STATIC,
    Console,
    Refused,
    is_api,
    load_messages,
    make_templates,
    render,
)
from bot.console.notify import Notifier
from bot.console.security import BodyTooLarge, HeadersMiddleware, SecurityMiddleware
from bot.settings import Settings, get_settings
from bot.tickets.store import TicketStore

#: security headers on every answer: no framing, no sniffing, scripts only from us
HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "Cache-Control": "no-store",
}


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def on_refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refused)
    console: Console = request.app.state.console
    text = console.explain(exc)
    if is_api(request) or "application/json" in request.headers.get("accept", ""):
        return JSONResponse(
            {**exc.extra, "error": exc.code, "message": text, "detail": exc.detail},
            status_code=exc.status,
        )
    if exc.status == 401 and request.method == "GET":
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
    if exc.code == "password_change_required" and request.method == "GET":
        return RedirectResponse("/password", status_code=303)
    return render(
        request, "error.html", status=exc.status, code=exc.code, detail=exc.detail, message=text
    )


async def on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
    reason = "page_not_found" if code == "not_found" else None  # no route: not a ticket
    return await on_refused(
        request, Refused(exc.status_code, code, str(exc.detail), reason=reason)
    )


async def on_too_large(request: Request, exc: Exception) -> Response:
    return await on_refused(request, Refused(413, "upload_too_large"))


def create_app(settings: Settings | None = None, store: TicketStore | None = None) -> Starlette:
    settings = settings or get_settings()
    store = store or TicketStore(settings.database_url, settings=settings)
    accounts = Accounts(store.engine, store.departments())
    messages = load_messages()
    console = Console(
        settings=settings,
        store=store,
        accounts=accounts,
        templates=make_templates(settings.timezone),
        messages=messages,
    )
    console.extras["notifier"] = Notifier(settings, store, accounts)
    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        *auth.routes,
        *queues.routes,
        *live.routes,
        *tickets.routes,
        *users.routes,
        *upload.routes,
        *api.routes,
        *supervision.routes,
        *opendata_pages.routes,
        Mount("/static", app=StaticFiles(directory=str(STATIC)), name="static"),
    ]
    middleware = [
        Middleware(
            SessionMiddleware,
            secret_key=settings.secret("console_session"),
            session_cookie="citizenbot_console",
            max_age=settings.console_session_hours * 3600,
            same_site="lax",
            https_only=settings.console_https_only,
        ),
        Middleware(
            SecurityMiddleware,
            accounts=accounts,
            messages=messages,
            upload_cap=settings.console_upload_max_mb * 1024 * 1024 + 64 * 1024,
        ),
    ]
    middleware.insert(0, Middleware(HeadersMiddleware, headers=HEADERS))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={
            Refused: on_refused,
            HTTPException: on_http,
            BodyTooLarge: on_too_large,
        },
        lifespan=live.lifespan,  # 在线会话: sessions nobody took in time become call-backs
    )
    app.state.console = console

    open311.install(app)
    return app
