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
* urlencoded and JSON bodies are capped (``MAX_BODY``); uploads are capped by
  the upload route while it streams.
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


def _refusal(scope: Scope, status: int, code: str, messages: dict[str, str]) -> Response:
    text = messages.get(code, code)
    if scope["path"].startswith("/api/") or "json" in Headers(scope=scope).get("accept", ""):
        return JSONResponse({"error": code, "message": text}, status_code=status)
    return PlainTextResponse(f"{status} {text}", status_code=status)


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, accounts: Accounts, messages: dict[str, str]) -> None:
        self.app = app
        self.accounts = accounts
        self.messages = messages

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["user"] = None
        authorization = headers.get("authorization", "")
        session: dict[str, Any] = scope.get("session", {})

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

        length = headers.get("content-length")
        content_type = headers.get("content-type", "")
        is_upload = content_type.startswith(("multipart/form-data", "application/octet-stream"))
        if not is_upload and length and length.isdigit() and int(length) > MAX_BODY:
            await _refusal(scope, 413, "too_large", self.messages)(scope, receive, send)
            return

        supplied = headers.get("x-csrf-token") or QueryParams(scope["query_string"]).get(
            "csrf_token"
        )
        replay = receive
        if not is_upload:
            body = await _read_body(receive)
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


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body, or None when it grows past ``MAX_BODY``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
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
