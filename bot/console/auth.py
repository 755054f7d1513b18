"""Signing in and out, and changing one's password (forced for one-time passwords).

The session cookie is signed (``SessionMiddleware``) and holds only the user
id, the user's ``session_epoch`` and the CSRF token; it is cleared on login
(no session fixation) and invalidated everywhere when the password changes or
the account is disabled.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from bot.console.accounts import MAX_PASSWORD, AccountError
from bot.console.core import call, console_of, flash, render, require_user


def safe_next(target: str | None) -> str:
    """Only local paths: a login link must not send staff to another site."""
    if not target or len(target) > 500:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


async def login_page(request: Request) -> Response:
    return render(request, "login.html", next=safe_next(request.query_params.get("next")))


async def login(request: Request) -> Response:
    console = console_of(request)
    form = await request.form()
    username = str(form.get("username") or "")[:100]
    password = str(form.get("password") or "")[: MAX_PASSWORD + 1]
    target = safe_next(str(form.get("next") or "/"))
    user = await call(console.accounts.authenticate, username, password)
    if user is None:
        flash(request, "login_failed", "error")
        return render(request, "login.html", status=401, next=target)
    request.session.clear()
    request.session.update(uid=user.id, epoch=user.session_epoch, csrf=secrets.token_urlsafe(32))
    if user.must_change_password:
        return RedirectResponse("/password", status_code=303)
    return RedirectResponse(target, status_code=303)


async def logout(request: Request) -> Response:
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


async def password_page(request: Request) -> Response:
    require_user(request, allow_stale=True)
    return render(request, "password.html")


async def change_password(request: Request) -> Response:
    user = require_user(request, allow_stale=True)
    console = console_of(request)
    form = await request.form()
    old = str(form.get("old_password") or "")
    new = str(form.get("new_password") or "")
    if new != str(form.get("new_password_again") or ""):
        flash(request, "password_mismatch", "error")
        return render(request, "password.html", status=422)
    try:
        fresh = await call(console.accounts.change_password, user, old, new)
    except AccountError as exc:
        flash(request, exc.code, "error")
        return render(request, "password.html", status=422)
    # the epoch moved: keep this session, every other one ends
    request.session["epoch"] = fresh.session_epoch
    flash(request, "password_changed")
    return RedirectResponse("/", status_code=303)


routes = [
    Route("/login", login_page, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/password", password_page, methods=["GET"]),
    Route("/password", change_password, methods=["POST"]),
]
