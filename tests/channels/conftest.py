"""Fixtures for the channel tests: the recording API server, one WeChat account, and
real servers carrying the WeChat channel.

* :func:`recording` — the stand-in for api.weixin.qq.com (session-wide).
* :func:`channel_app` — the channel's blueprint in a real Sanic server inside the
  test's event loop, fed to a scripted bot: fast tests of HTTP, crypto, dedupe
  and the 5-second rule with exact control over how slow the bot is.
* :func:`wechat_stack` — ``citizenbot run`` (real Rasa model, action server,
  ticket store) with the WeChat settings, for the end-to-end tests.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from rasa.core.channels.channel import UserMessage
from sanic import Sanic

from bot.settings import Settings
from connectors.state import TTLStore
from connectors.wechat import WeChatInput
from tests.channels.wechat_sim import WeChatServer
from tests.recording_server import RecordingServer
from tests.stack import Stack, free_port


@dataclass(frozen=True)
class Account:
    """One Official Account's secrets, random per session."""

    token: str = field(default_factory=lambda: secrets.token_hex(16))
    appid: str = field(default_factory=lambda: "wx" + secrets.token_hex(8))
    secret: str = field(default_factory=lambda: secrets.token_hex(16))
    aes_key: str = field(
        default_factory=lambda: base64.b64encode(secrets.token_bytes(32)).decode()[:43])

    def env(self, api_base: str, timeout: float) -> dict[str, str]:
        return {"WECHAT_TOKEN": self.token, "WECHAT_APPID": self.appid,
                "WECHAT_SECRET": self.secret, "WECHAT_AES_KEY": self.aes_key,
                "WECHAT_API_BASE": api_base, "WECHAT_REPLY_TIMEOUT": str(timeout)}


@pytest.fixture(scope="session")
def recording() -> Iterator[RecordingServer]:
    server = RecordingServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def account() -> Account:
    return Account()


# -- in-process: the channel in a real Sanic server, a scripted bot ----------------------


class ScriptedBot:
    """Stands in for Rasa's agent in the fast tests: answers by a script, can be slow.

    ``replies`` maps a user text to the messages the bot sends; anything else is
    echoed as ``收到：<text>``. ``"boom"`` raises, as a failing action would.
    """

    def __init__(self) -> None:
        self.received: list[UserMessage] = []
        self.delay = 0.0
        self.replies: dict[str, list[dict[str, Any]]] = {}

    async def __call__(self, message: UserMessage) -> None:
        self.received.append(message)
        if self.delay:
            await asyncio.sleep(self.delay)
        if message.text == "boom":
            raise RuntimeError("the bot failed")
        script = self.replies.get(message.text or "", [{"text": f"收到：{message.text}"}])
        for reply in script:
            await message.output_channel.send_response(message.sender_id, dict(reply))

    def texts_from(self, sender: str) -> list[str]:
        return [m.text or "" for m in self.received if m.sender_id == sender]


@dataclass
class ChannelApp:
    channel: WeChatInput
    bot: ScriptedBot
    wechat: WeChatServer
    client: httpx.AsyncClient
    settings: Settings


_apps = itertools.count()

MakeApp = Callable[..., Awaitable[ChannelApp]]


@pytest.fixture
async def channel_app(
    recording: RecordingServer, account: Account, tmp_path: Path
) -> AsyncIterator[MakeApp]:
    """Factory: ``await channel_app(timeout=0.5, store=None, aes=True)``."""
    servers: list[Any] = []
    clients: list[httpx.AsyncClient] = []
    channels: list[WeChatInput] = []

    async def make(timeout: float = 2.0, store: TTLStore | None = None,
                   aes: bool = True) -> ChannelApp:
        settings = Settings(
            var_dir=tmp_path, wechat_token=account.token, wechat_appid=account.appid,
            wechat_secret=account.secret, wechat_aes_key=account.aes_key if aes else "",
            wechat_api_base=recording.base_url, wechat_reply_timeout=timeout,
        )
        # test mode: several Sanic apps in one process (touch-ups re-run per app)
        Sanic.test_mode = True
        channel = WeChatInput(settings=settings, store=store)
        bot = ScriptedBot()
        app = Sanic(f"wechat_test_{os.getpid()}_{next(_apps)}")
        app.config.ACCESS_LOG = False
        app.blueprint(channel.blueprint(bot), url_prefix="/webhooks/wechat")
        port = free_port()
        server = await app.create_server(host="127.0.0.1", port=port,
                                         return_asyncio_server=True)
        assert server is not None
        await server.startup()
        servers.append(server)
        client = httpx.AsyncClient(timeout=30)
        clients.append(client)
        channels.append(channel)
        url = f"http://127.0.0.1:{port}/webhooks/wechat/webhook"
        wechat = WeChatServer(url, account.token, account.appid, account.aes_key)
        return ChannelApp(channel, bot, wechat, client, settings)

    yield make
    for client in clients:
        await client.aclose()
    for channel in channels:
        # let late deliveries finish before the loop goes away
        pending = list(channel._background)
        if pending:
            await asyncio.wait(pending, timeout=10)
        channel.service.close()
    for server in servers:
        server.close()
        await server.wait_closed()


# -- end to end: citizenbot run with the WeChat channel ------------------------------------


def _start_stack(tmp_path_factory: pytest.TempPathFactory, recording: RecordingServer,
                 account: Account, timeout: float, name: str, model: Path) -> Stack:
    env = account.env(recording.base_url, timeout)
    env["REDIS_URL"] = ""
    # the session's model (TEST_MODEL included), as the shared `stack` fixture runs
    return Stack(var_dir=tmp_path_factory.mktemp(name), model=model, extra_env=env).start()


@pytest.fixture(scope="module")
def wechat_stack(model: Path, tmp_path_factory: pytest.TempPathFactory,
                 recording: RecordingServer, account: Account) -> Iterator[Stack]:
    """Rasa + action server with the WeChat channel and a generous reply budget."""
    stack = _start_stack(tmp_path_factory, recording, account, 4.0, "wechat-stack", model)
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def slow_wechat_stack(model: Path, tmp_path_factory: pytest.TempPathFactory,
                      recording: RecordingServer, account: Account) -> Iterator[Stack]:
    """The same, with a reply budget no real turn meets: every answer goes by the API."""
    stack = _start_stack(tmp_path_factory, recording, account, 0.01, "wechat-slow-stack",
                         model)
    yield stack
    stack.stop()


def webhook(stack: Stack, account: Account) -> WeChatServer:
    return WeChatServer(f"{stack.rasa_url}/webhooks/wechat/webhook", account.token,
                        account.appid, account.aes_key)
