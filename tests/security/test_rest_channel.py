"""Issue 16, REST: who may post, whose conversation a post reaches, and how much of it.

The real :class:`connectors.rest.RestInput` runs in a real Sanic server inside the
test's event loop; what would be Rasa's agent is a recorder of the
``UserMessage`` objects it is handed, so "nothing reached the bot" is exact.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from rasa.core.channels.channel import UserMessage
from sanic import Sanic

from bot.settings import Settings
from connectors.limits import MAX_MESSAGE_CHARS
from connectors.rest import RestInput
from tests.stack import free_port

_apps = itertools.count()
SECRET = "integration-secret-0123456789abcdef"
JWT_SECRET = "jwt-secret-0123456789abcdef-0123456789"


@dataclass
class Recorder:
    """Stands in for Rasa's agent: keeps each message and answers it."""

    messages: list[UserMessage] = field(default_factory=list)

    async def __call__(self, message: UserMessage) -> None:
        self.messages.append(message)
        await message.output_channel.send_text_message(message.sender_id, "收到")


@dataclass
class RestApp:
    url: str
    bot: Recorder
    client: httpx.AsyncClient

    async def post(self, body: Any, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.client.post(self.url, json=body, headers=headers, **kwargs)


MakeRest = Callable[..., Awaitable[RestApp]]


@pytest.fixture
async def rest_app(tmp_path: Path) -> AsyncIterator[MakeRest]:
    servers: list[Any] = []
    clients: list[httpx.AsyncClient] = []

    async def make(**settings: Any) -> RestApp:
        Sanic.test_mode = True
        channel = RestInput(Settings(var_dir=tmp_path, **settings))
        bot = Recorder()
        app = Sanic(f"rest_test_{os.getpid()}_{next(_apps)}")
        app.config.ACCESS_LOG = False
        app.blueprint(channel.blueprint(bot), url_prefix="/webhooks/rest")
        port = free_port()
        server = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True)
        assert server is not None
        await server.startup()
        servers.append(server)
        client = httpx.AsyncClient(timeout=30)
        clients.append(client)
        return RestApp(f"http://127.0.0.1:{port}/webhooks/rest/webhook", bot, client)

    yield make
    for client in clients:
        await client.aclose()
    for server in servers:
        server.close()
        await server.wait_closed()


async def test_senders_are_namespaced_so_rest_cannot_speak_for_other_channels(
    rest_app: MakeRest,
) -> None:
    app = await rest_app()
    for claimed in ("4242", "telegram:4242", "wechat:o6_bmjrPTlm6_2sgVt7hMZOPfL2M"):
        answer = await app.post({"sender": claimed, "message": "我的工单",
                                 "input_channel": "telegram"})
        assert answer.status_code == 200
        # the client gets its own name back, the bot sees it under the REST channel
        assert answer.json() == [{"recipient_id": claimed, "text": "收到"}]
    assert [(m.sender_id, m.input_channel) for m in app.bot.messages] == [
        ("rest:4242", "rest"),
        ("rest:telegram:4242", "rest"),
        ("rest:wechat:o6_bmjrPTlm6_2sgVt7hMZOPfL2M", "rest"),
    ]


async def test_a_50000_character_message_is_cut_to_the_limit(rest_app: MakeRest) -> None:
    app = await rest_app()
    answer = await app.post({"sender": "long", "message": "噪音" * 25_000})
    assert answer.status_code == 200
    [message] = app.bot.messages
    assert len(message.text) == MAX_MESSAGE_CHARS


@pytest.mark.parametrize(
    "body",
    [
        [],
        "text",
        {"message": "你好"},
        {"sender": "", "message": "你好"},
        {"sender": "x" * 129, "message": "你好"},
        {"sender": "a", "message": None},
        {"sender": {"id": 1}, "message": "你好"},
        {"sender": "../conversations/x", "message": "你好"},
        {"sender": "张三", "message": "你好"},
    ],
)
async def test_malformed_bodies_get_a_clear_error_and_reach_nobody(
    rest_app: MakeRest, body: Any
) -> None:
    app = await rest_app()
    answer = await app.post(body)
    assert answer.status_code == 400 and answer.json()["error"]
    assert app.bot.messages == []


async def test_invalid_json_and_huge_bodies_are_refused(rest_app: MakeRest) -> None:
    app = await rest_app()
    broken = await app.client.post(app.url, content=b'{"sender": "a", "message": ',
                                   headers={"content-type": "application/json"})
    huge = await app.post({"sender": "a", "message": "x" * 300_000})
    assert broken.status_code == 400 and huge.status_code == 413
    assert app.bot.messages == []


async def test_production_without_a_token_turns_the_channel_off(rest_app: MakeRest) -> None:
    app = await rest_app(deploy_profile="production")
    answer = await app.post({"sender": "a", "message": "你好"})
    assert answer.status_code == 403 and "off" in answer.json()["error"]
    assert app.bot.messages == []


async def test_a_configured_token_is_required(rest_app: MakeRest) -> None:
    app = await rest_app(deploy_profile="production", rest_token=SECRET)
    assert (await app.post({"sender": "a", "message": "你好"})).status_code == 401
    assert (await app.post({"sender": "a", "message": "你好"}, token="guess")).status_code == 401
    assert app.bot.messages == []
    ok = await app.post({"sender": "a", "message": "你好"}, token=SECRET)
    assert ok.status_code == 200 and [m.sender_id for m in app.bot.messages] == ["rest:a"]


async def test_a_jwt_speaks_only_for_the_user_it_names(rest_app: MakeRest) -> None:
    app = await rest_app(rest_jwt_secret=JWT_SECRET)
    alice = jwt.encode({"sub": "alice", "exp": int(time.time()) + 60}, JWT_SECRET)
    expired = jwt.encode({"sub": "alice", "exp": int(time.time()) - 60}, JWT_SECRET)
    forged = jwt.encode({"sub": "alice"}, "another-secret-0123456789abcdef-0123456789")
    as_bob = await app.post({"sender": "bob", "message": "我的工单"}, token=alice)
    assert as_bob.status_code == 403
    for token in (expired, forged):
        refused = await app.post({"sender": "alice", "message": "你好"}, token=token)
        assert refused.status_code == 401
    assert app.bot.messages == []
    ok = await app.post({"sender": "alice", "message": "我的工单"}, token=alice)
    assert ok.status_code == 200 and [m.sender_id for m in app.bot.messages] == ["rest:alice"]
