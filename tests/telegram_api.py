"""A stand-in for the Telegram Bot API (``/bot<token>/<method>``) that records every call.

The only fake in the Telegram tests: no test can reach api.telegram.org, so the
``TELEGRAM_API_BASE`` setting points here (``http://127.0.0.1:PORT/bot``). It
answers what the channel calls — ``getMe``, ``sendMessage``, ``sendPhoto``,
``sendChatAction``, ``answerCallbackQuery``, webhook and polling calls — with the
Bot API's JSON shapes, so python-telegram-bot parses the answers as it would
Telegram's. ``flood`` makes the next sends fail with 429 ``retry_after``, as
Telegram's flood control does; ``updates`` feeds ``getUpdates`` (polling).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

BOT_USER = {
    "id": 7000000001,
    "is_bot": True,
    "first_name": "Citizenbot",
    "username": "citizenbot_test_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
TRUE_METHODS = {
    "sendchataction", "answercallbackquery", "setwebhook", "deletewebhook", "close", "logout",
    "editmessagereplymarkup",
}
MESSAGE_METHODS = {"sendmessage", "sendphoto"}


@dataclass(frozen=True)
class Call:
    """One Bot API request: the method (as sent) and its decoded parameters."""

    token: str
    method: str
    params: dict[str, Any]


def _decode(raw: bytes, content_type: str) -> dict[str, Any]:
    """PTB posts form fields, JSON-encoding the non-string ones (chat_id, reply_markup …)."""
    if not raw:
        return {}
    if "json" in content_type:
        return dict(json.loads(raw))
    params: dict[str, Any] = {}
    for key, values in parse_qs(raw.decode(), keep_blank_values=True).items():
        value: Any = values[0]
        if key != "text" and value[:1] in "{[-0123456789tf" and value:
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        params[key] = value
    return params


@dataclass
class TelegramApi:
    """``start()`` it, set ``TELEGRAM_API_BASE`` to :attr:`base_url`, read :attr:`calls`."""

    token: str
    host: str = "127.0.0.1"
    calls: list[Call] = field(default_factory=list)
    #: retry_after seconds for the next sendMessage calls (flood control), oldest first
    flood: deque[int] = field(default_factory=deque)
    #: updates handed to getUpdates (polling mode)
    updates: deque[dict[str, Any]] = field(default_factory=deque)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _message_id: int = 100

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://{self.host}:{self._server.server_address[1]}/bot"

    def start(self) -> TelegramApi:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, payload: dict[str, Any], status: int = 200) -> None:
                data = json.dumps(payload, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self.do_POST()

            def do_POST(self) -> None:
                path = urlsplit(self.path).path
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                token, _, method = path.removeprefix("/bot").partition("/")
                params = _decode(raw, self.headers.get("Content-Type", ""))
                call = Call(token, method, params)
                with api._lock:
                    api.calls.append(call)
                if token != api.token:
                    self._answer({"ok": False, "error_code": 401,
                                  "description": "Unauthorized"}, 401)
                    return
                status, payload = api._respond(call)
                self._answer(payload, status)

        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="telegram-api",
                         daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _respond(self, call: Call) -> tuple[int, dict[str, Any]]:
        method = call.method.lower()
        if method == "getme":
            return 200, {"ok": True, "result": BOT_USER}
        if method in TRUE_METHODS:
            return 200, {"ok": True, "result": True}
        if method == "getupdates":
            deadline = time.monotonic() + min(float(call.params.get("timeout") or 0), 1.0)
            while not self.updates and time.monotonic() < deadline:
                time.sleep(0.05)
            with self._lock:
                batch = list(self.updates)
                self.updates.clear()
            return 200, {"ok": True, "result": batch}
        if method in MESSAGE_METHODS:
            with self._lock:
                retry = self.flood.popleft() if self.flood and method == "sendmessage" else None
                self._message_id += 1
                message_id = self._message_id
            if retry is not None:
                return 429, {"ok": False, "error_code": 429,
                             "description": f"Too Many Requests: retry after {retry}",
                             "parameters": {"retry_after": retry}}
            chat_id = int(call.params.get("chat_id", 0))
            message: dict[str, Any] = {
                "message_id": message_id, "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private"}, "from": BOT_USER,
            }
            if method == "sendmessage":
                message["text"] = str(call.params.get("text", ""))
            else:
                message["photo"] = [{"file_id": "photo", "file_unique_id": "photo",
                                     "width": 1, "height": 1}]
            if isinstance(call.params.get("reply_markup"), dict):
                message["reply_markup"] = call.params["reply_markup"]
            return 200, {"ok": True, "result": message}
        return 404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"}

    # -- reading what was recorded -----------------------------------------------------------
    def of(self, method: str, chat_id: int | None = None) -> list[Call]:
        with self._lock:
            calls = [c for c in self.calls if c.method.lower() == method.lower()]
        return [c for c in calls if chat_id is None or c.params.get("chat_id") == chat_id]

    def texts(self, chat_id: int) -> list[str]:
        return [str(c.params.get("text", "")) for c in self.of("sendMessage", chat_id)]

    def wait(self, method: str, chat_id: int, count: int = 1, timeout: float = 30.0) -> list[Call]:
        """Wait until ``count`` calls of ``method`` for ``chat_id`` arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            calls = self.of(method, chat_id)
            if len(calls) >= count:
                return calls
            time.sleep(0.05)
        raise AssertionError(f"expected {count} {method} to {chat_id}, got {self.of(method)}")
