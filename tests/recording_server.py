"""A stand-in for the remote WeChat (and similar) HTTP APIs that records every request.

The only fake in the WeChat tests: no test can reach api.weixin.qq.com, so the
``WECHAT_API_BASE`` setting points here. It answers the two calls the channel
makes — ``GET /cgi-bin/token`` and ``POST /cgi-bin/message/custom/send`` — the
way WeChat does, and can be told to answer the next sends with an error code.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

ERRMSG = {
    -1: "system error",
    45015: "response out of time limit or subscription is canceled",
    45047: "out of response count limit",
}


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: Any


@dataclass
class RecordingServer:
    """``start()`` it, point a base URL at :attr:`base_url`, read :attr:`requests`."""

    host: str = "127.0.0.1"
    requests: list[Recorded] = field(default_factory=list)
    #: errcodes for the next custom/send calls, oldest first (then 0)
    send_errors: deque[int] = field(default_factory=deque)
    token_expires_in: int = 7200
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _tokens: int = 0

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/cgi-bin/"

    def start(self) -> RecordingServer:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def _answer(self, payload: dict[str, Any], status: int = 200) -> None:
                data = json.dumps(payload, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _record(self) -> Recorded:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body: Any = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                entry = Recorded(self.command, url.path, query, body)
                with recorder._lock:
                    recorder.requests.append(entry)
                return entry

            def do_GET(self) -> None:
                entry = self._record()
                if entry.path.endswith("/token"):
                    with recorder._lock:
                        recorder._tokens += 1
                        token = f"token-{recorder._tokens}"
                    self._answer({"access_token": token,
                                  "expires_in": recorder.token_expires_in})
                else:
                    self._answer({"errcode": 40004, "errmsg": "unknown path"}, 404)

            def do_POST(self) -> None:
                entry = self._record()
                if not entry.path.endswith("/message/custom/send"):
                    self._answer({"errcode": 40004, "errmsg": "unknown path"}, 404)
                    return
                with recorder._lock:
                    errcode = recorder.send_errors.popleft() if recorder.send_errors else 0
                self._answer({"errcode": errcode, "errmsg": ERRMSG.get(errcode, "ok")})

        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="recording-server",
                         daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- reading what was recorded -------------------------------------------------------
    def sent(self, touser: str | None = None) -> list[Recorded]:
        """custom/send calls WeChat answered (any errcode), optionally for one user."""
        with self._lock:
            entries = [r for r in self.requests if r.path.endswith("/message/custom/send")]
        return [r for r in entries
                if touser is None or (isinstance(r.body, dict) and r.body.get("touser") == touser)]

    def sent_texts(self, touser: str) -> list[str]:
        return [r.body["text"]["content"] for r in self.sent(touser)
                if isinstance(r.body, dict) and "text" in r.body]

    def token_calls(self) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.path.endswith("/token"))

    def wait_sent(self, touser: str, count: int = 1, timeout: float = 30.0) -> list[Recorded]:
        """Wait until ``count`` sends to ``touser`` arrived (the API path is asynchronous)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sent = self.sent(touser)
            if len(sent) >= count:
                return sent
            time.sleep(0.05)
        raise AssertionError(f"expected {count} send(s) to {touser}, got {self.sent(touser)}")
