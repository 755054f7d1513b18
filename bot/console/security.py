"""Who is asking, and is the form theirs: authentication and CSRF in one middleware.

Runs inside Starlette's ``SessionMiddleware`` (signed cookie) and before any
route, so no route can forget a check:

* ``Authorization: Bearer <token>`` (machines): the token must be valid; such
  requests carry no cookie authority, so they are exempt from CSRF.
* otherwise the session names the user; a session signed before the user's
  password was reset or the account disabled (``session_epoch``) is dropped.
* every POST/PUT/PATCH/DELETE that relies on the session must carry the
  session's CSRF token: header ``X-CSRF-Token`` (fetch), form field
  ``csrf_token`` (urlencoded forms) or query ``csrf_token`` (file uploads,
  whose bodies are streamed and never buffered here).
* every body is capped while it streams, before anything parses it: 1 MB
  (``MAX_BODY``) on every route whatever its content type (a multipart body
  included), the upload size only on the upload route (``UPLOAD_PATHS``),
  whose bytes are counted as the route reads them.
"""

from __future__ import annotations

import hmac
import json
from typing import Any
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, QueryParams
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.console.accounts import Accounts

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: largest non-upload request body (forms, JSON): far above any sane reply text
MAX_BODY = 1_000_000
#: the only routes whose bodies may be larger (hotline transcripts), streamed to disk
UPLOAD_PATHS = frozenset({"/hotline/upload"})


class BodyTooLarge(Exception):
    """A body grew past its cap while streaming (raised from ``receive``)."""


def _refusal(scope: Scope, status: int, code: str, messages: dict[str, str]) -> Response:
    text = messages.get(code, code)
    if scope["path"].startswith("/api/") or "json" in Headers(scope=scope).get("accept", ""):
        return JSONResponse({"error": code, "message": text}, status_code=status)
    return PlainTextResponse(f"{status} {text}", status_code=status)


class SecurityMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        accounts: Accounts,
        messages: dict[str, str],
        upload_cap: int = 100 * 1024 * 1024,
    ) -> None:
        self.app = app
        self.accounts = accounts
        self.messages = messages
        self.upload_cap = upload_cap

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["user"] = None
        authorization = headers.get("authorization", "")
        session: dict[str, Any] = scope.get("session", {})

        if scope["method"] in UNSAFE:
            # before anything else reads a byte: every route's body is capped as it streams
            capped = await self._capped(scope, receive, send, headers)
            if capped is None:
                return
            receive = capped

        if authorization:
            scheme, _, token = authorization.partition(" ")
            user = None
            if scheme.lower() == "bearer":
                user = await run_in_threadpool(self.accounts.user_for_token, token.strip())
            if user is None:
                await _refusal(scope, 401, "bad_token", self.messages)(scope, receive, send)
                return
            state["user"], state["auth_via"] = user, "token"
            await self.app(scope, receive, send)
            return

        uid = session.get("uid")
        if isinstance(uid, int):
            user = await run_in_threadpool(self.accounts.get, uid)
            if user is None or user.disabled or user.session_epoch != session.get("epoch"):
                session.clear()
            else:
                state["user"] = user
        state["auth_via"] = "session"

        if scope["method"] not in UNSAFE:
            await self.app(scope, receive, send)
            return

        content_type = headers.get("content-type", "")
        supplied = headers.get("x-csrf-token") or QueryParams(scope["query_string"]).get(
            "csrf_token"
        )
        replay = receive
        if not _is_upload(scope, headers):
            body = await _read_body(receive)  # already capped by _capped
            if body is None:
                await _refusal(scope, 413, "too_large", self.messages)(scope, receive, send)
                return
            if not supplied and content_type.startswith("application/x-www-form-urlencoded"):
                values = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
                supplied = (values.get("csrf_token") or [""])[0]
            replay = _replayer(body, receive)
        expected = session.get("csrf")
        if not expected or not supplied or not hmac.compare_digest(str(expected), str(supplied)):
            await _refusal(scope, 403, "csrf", self.messages)(scope, replay, send)
            return
        await self.app(scope, replay, send)


    async def _capped(
        self, scope: Scope, receive: Receive, send: Send, headers: Headers
    ) -> Receive | None:
        """``receive`` limited to the route's cap; None when refused already (413 sent).

        Other routes: the whole body (≤ 1 MB, any content type) is read here and
        replayed, so no parser ever sees more. Upload routes: counted as read.
        """
        upload = _is_upload(scope, headers)
        cap = self.upload_cap if upload else MAX_BODY
        length = headers.get("content-length")
        if length and length.isdigit() and int(length) > cap:
            await _refusal(scope, 413, "too_large", self.messages)(scope, receive, send)
            return None
        if upload:
            return _counting(receive, cap)
        body = await _read_body(receive, cap)
        if body is None:
            await _refusal(scope, 413, "too_large", self.messages)(scope, receive, send)
            return None
        return _replayer(body, receive)


def _is_upload(scope: Scope, headers: Headers) -> bool:
    content_type = headers.get("content-type", "")
    return scope["path"] in UPLOAD_PATHS and content_type.startswith(
        ("multipart/form-data", "application/octet-stream")
    )


def _counting(receive: Receive, cap: int) -> Receive:
    """``receive`` that raises :class:`BodyTooLarge` once more than ``cap`` bytes came."""
    size = 0

    async def counted() -> Message:
        nonlocal size
        message = await receive()
        size += len(message.get("body", b""))
        if size > cap:
            raise BodyTooLarge(cap)
        return message

    return counted


async def _read_body(receive: Receive, cap: int = MAX_BODY) -> bytes | None:
    """The whole body, or None when it grows past ``cap`` (reading stops there)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > cap:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _replayer(body: bytes, original: Receive) -> Receive:
    """Hand the buffered body to the app once, then the real channel (disconnects)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return await original()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def json_body(raw: bytes) -> dict[str, Any]:
    """Parse a JSON object body; anything else is bad input."""
    if not raw:
        return {}
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("JSON object expected")
    return value


class HeadersMiddleware:
    """Security headers on every answer: no framing, no sniffing, scripts only from us."""

    def __init__(self, app: ASGIApp, headers: dict[str, str]) -> None:
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self.headers if k not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)
