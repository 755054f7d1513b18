"""Signing in and out, and changing one's password (forced for one-time passwords).

The session cookie is signed (``SessionMiddleware``) and holds only the user
id, the user's ``session_epoch`` and the CSRF token; it is cleared on login
(no session fixation) and invalidated everywhere when the password changes, the
account is disabled or the user logs out (the epoch moves, so a copied cookie
stops working). Password guessing meets :class:`LoginThrottle`.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from bot.console.accounts import MAX_PASSWORD, AccountError
from bot.console.core import call, console_of, flash, render, require_user, user_of

log = logging.getLogger(__name__)


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0
    locked_until: float = 0.0


class LoginThrottle:
    """Backoff and lockout of password guessing, per account and per address.

    An account takes ``ACCOUNT_FREE`` wrong passwords in a row, an address
    ``ADDRESS_FREE`` (over any accounts); each further failure locks it for
    ``BASE_LOCK`` seconds, doubled per failure up to ``MAX_LOCK``. While
    locked, the password is not checked at all, so even the right one is
    refused: guessing gains nothing by speed. A successful login clears the
    account's count (not the address's); counts are forgotten after
    ``FORGET`` seconds without failure. Kept in the console process (one
    console process per deployment; several would each keep their own).
    """

    ACCOUNT_FREE = 5
    ADDRESS_FREE = 20
    BASE_LOCK = 30.0
    MAX_LOCK = 3600.0
    FORGET = 3600.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._seen: dict[tuple[str, str], _Failures] = {}

    @staticmethod
    def _keys(username: str, address: str) -> list[tuple[str, str]]:
        return [("account", username.strip().lower()), ("address", address)]

    def _get(self, key: tuple[str, str], now: float) -> _Failures:
        record = self._seen.get(key)
        if record is None or (now - record.last > self.FORGET and now >= record.locked_until):
            record = self._seen[key] = _Failures()
        return record

    def locked_for(self, username: str, address: str) -> float:
        """Seconds until a login may be tried again (0: now)."""
        now = self.clock()
        return max(
            (max(self._get(k, now).locked_until - now, 0.0) for k in self._keys(username, address)),
            default=0.0,
        )

    #: records kept before stale ones are dropped (a spray of made-up names must not
    #: grow the console's memory without bound)
    MAX_RECORDS = 10_000

    def failed(self, username: str, address: str) -> None:
        now = self.clock()
        if len(self._seen) >= self.MAX_RECORDS:
            self._seen = {
                k: r for k, r in self._seen.items()
                if now - r.last <= self.FORGET or now < r.locked_until
            }
        for key in self._keys(username, address):
            record = self._get(key, now)
            record.count += 1
            record.last = now
            free = self.ACCOUNT_FREE if key[0] == "account" else self.ADDRESS_FREE
            if record.count >= free:
                lock = min(self.BASE_LOCK * 2 ** (record.count - free), self.MAX_LOCK)
                record.locked_until = now + lock

    def succeeded(self, username: str, address: str) -> None:
        self._seen.pop(self._keys(username, address)[0], None)

    def __len__(self) -> int:
        return len(self._seen)


def throttle_of(request: Request) -> LoginThrottle:
    extras = console_of(request).extras
    throttle = extras.get("login_throttle")
    if throttle is None:
        throttle = extras["login_throttle"] = LoginThrottle()
    return throttle


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
    throttle = throttle_of(request)
    address = request.client.host if request.client else "-"
    wait = throttle.locked_for(username, address)
    if wait > 0:
        log.warning("console login refused: locked for %.0f s after repeated failures", wait)
        flash(request, "login_locked", "error")
        response = render(request, "login.html", status=429, next=target)
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    user = await call(console.accounts.authenticate, username, password)
    if user is None:
        throttle.failed(username, address)
        flash(request, "login_failed", "error")
        return render(request, "login.html", status=401, next=target)
    throttle.succeeded(username, address)
    request.session.clear()
    request.session.update(uid=user.id, epoch=user.session_epoch, csrf=secrets.token_urlsafe(32))
    if user.must_change_password:
        return RedirectResponse("/password", status_code=303)
    return RedirectResponse(target, status_code=303)


async def logout(request: Request) -> Response:
    """End the session on the server too: a copy of the cookie is refused from now on."""
    user = user_of(request)
    if user is not None and getattr(request.state, "auth_via", None) == "session":
        await call(console_of(request).accounts.end_sessions, user.id)
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
