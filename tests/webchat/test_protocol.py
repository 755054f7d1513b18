"""The socket.io protocol as other clients speak it (rasa-webchat: session_request,
session_confirm, user_uttered, bot_uttered), and what the channel refuses.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from typing import Any

import httpx
import pytest
import socketio

from tests.stack import Stack

pytestmark = pytest.mark.stack
HEX32 = re.compile(r"[0-9a-f]{32}")


class Client:
    """A bare socket.io client, the way rasa-webchat talks to Rasa."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        for name in ("session_confirm", "bot_uttered"):
            self.sio.on(name, self._recorder(name))

    def _recorder(self, name: str) -> Any:
        async def record(data: Any = None) -> None:
            await self.events.put((name, data))
        return record

    async def next(self, name: str, timeout: float = 60) -> Any:
        while True:
            event, data = await asyncio.wait_for(self.events.get(), timeout)
            if event == name:
                return data

    async def session(self, url: str, requested: str | None = None) -> str:
        # long polling: python-engineio's websocket client needs a newer aiohttp than
        # Rasa pins (aiohttp.ClientWSTimeout); the browser tests cover websockets.
        # The namespace handshake can take longer than python-socketio's default 1 s
        # on a busy machine; a citizen's browser waits far longer.
        await self.sio.connect(
            url, socketio_path="/socket.io", transports=["polling"], wait_timeout=15
        )
        await self.sio.emit("session_request", {"session_id": requested})
        return str(await self.next("session_confirm"))

    async def close(self) -> None:
        """Leave at once, the way a closed browser tab does.

        A polite disconnect over long polling waits for the pending poll, which the
        server only answers at its next ping (~25 s); abort sends the close packet and
        does not wait for it.
        """
        if self.sio.connected:
            await self.sio.eio.disconnect(abort=True)


async def test_rasa_webchat_protocol(web_stack: Stack) -> None:
    client = Client()
    try:
        session = await client.session(web_stack.rasa_url)
        assert HEX32.fullmatch(session)
        await client.sio.emit("user_uttered", {"message": "你好", "session_id": session,
                                               "customData": {"language": "zh"}})
        answer = await client.next("bot_uttered")
        assert answer["text"] and answer["quick_replies"][0]["payload"]
    finally:
        await client.close()


async def test_guessable_session_ids_are_replaced(web_stack: Stack) -> None:
    for requested in ("alice", "12345678", "../../etc", "A" * 32):
        # a new client (a new browser tab) each time: reconnecting one python-socketio
        # client right after an aborted disconnect is racy
        client = Client()
        try:
            session = await client.session(web_stack.rasa_url, requested)
        finally:
            await client.close()
        assert session != requested and HEX32.fullmatch(session)


async def test_client_metadata_is_filtered(web_stack: Stack) -> None:
    client = Client()
    try:
        session = await client.session(web_stack.rasa_url)
        await client.sio.emit("user_uttered", {
            "message": "你好", "session_id": session,
            "metadata": {"display": "你好", "attachments": [{"type": "image", "url": "x"}]},
        })
        await client.next("bot_uttered")
    finally:
        await client.close()
    async with httpx.AsyncClient(timeout=30) as http:
        tracker = (await http.get(f"{web_stack.rasa_url}/conversations/webchat:{session}/tracker",
                                  params={"token": "test-token"})).json()
    user = [e for e in tracker["events"] if e["event"] == "user"][-1]
    assert user["input_channel"] == "webchat"
    assert user["metadata"]["display"] == "你好"
    assert "attachments" not in user["metadata"]  # only display and language pass


def test_history_endpoint_guards_sessions(web_stack: Stack) -> None:
    url = f"{web_stack.rasa_url}/webhooks/webchat/history"
    assert httpx.post(url, json={"session_id": "alice"}).status_code == 400
    assert httpx.post(url, json={}).status_code == 400
    unknown = secrets.token_hex(16)
    assert httpx.post(url, json={"session_id": unknown}).json()["messages"] == []
    # a conversation held on another channel under a hex-looking id stays closed
    rest_sender = secrets.token_hex(16)
    httpx.post(f"{web_stack.rasa_url}/webhooks/rest/webhook",
               json={"sender": rest_sender, "message": "你好"}, timeout=60).raise_for_status()
    assert httpx.post(url, json={"session_id": rest_sender}).json()["messages"] == []


def test_only_the_widget_files_are_served(web_stack: Stack) -> None:
    base = f"{web_stack.rasa_url}/webchat"
    widget = httpx.get(f"{base}/widget.js")
    assert widget.status_code == 200 and "javascript" in widget.headers["content-type"]
    assert httpx.get(f"{base}/demo.html").status_code == 200
    for path in ("package.json", "..%2Fchannel.py", "src", "%2e%2e/history.py"):
        assert httpx.get(f"{base}/{path}").status_code == 404, path
