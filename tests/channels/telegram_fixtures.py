"""Fixtures for the Telegram tests: the recording Bot API, a stack carrying the channel,
and builders of real Bot API update JSON (the shapes Telegram posts to a webhook).
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.stack import Stack
from tests.telegram_api import TelegramApi

TOKEN = f"{secrets.randbelow(10**9)}:{secrets.token_urlsafe(24)}"
SECRET = secrets.token_urlsafe(24)

_update_ids = itertools.count(int(time.time()) % 10**6 * 100)
_chat_ids = itertools.count(880_000_001)


def new_chat() -> int:
    return next(_chat_ids)


def _message(chat_id: int, **fields: Any) -> dict[str, Any]:
    return {
        "message_id": next(_update_ids),
        "date": int(time.time()),
        "chat": {"id": chat_id, "type": "private", "first_name": "小张"},
        "from": {"id": chat_id, "is_bot": False, "first_name": "小张", "language_code": "zh-hans"},
        **fields,
    }


def message_update(chat_id: int, **fields: Any) -> dict[str, Any]:
    """An update carrying a new message (``text=``, ``location=``, ``sticker=`` …)."""
    return {"update_id": next(_update_ids), "message": _message(chat_id, **fields)}


def edited_update(chat_id: int, text: str) -> dict[str, Any]:
    return {"update_id": next(_update_ids),
            "edited_message": _message(chat_id, text=text, edit_date=int(time.time()))}


def callback_update(chat_id: int, data: str, bot_message: dict[str, Any]) -> dict[str, Any]:
    """A press on an inline button of ``bot_message`` (what sendMessage returned)."""
    return {
        "update_id": next(_update_ids),
        "callback_query": {
            "id": str(secrets.randbelow(10**12)),
            "from": {"id": chat_id, "is_bot": False, "first_name": "小张"},
            "chat_instance": "-1234567890",
            "data": data,
            "message": bot_message,
        },
    }


@dataclass
class TelegramBot:
    """The running server's webhook, and the Bot API stand-in that records its answers."""

    stack: Stack
    api: TelegramApi

    @property
    def url(self) -> str:
        return f"{self.stack.rasa_url}/webhooks/telegram/webhook"

    def post(self, update: dict[str, Any], secret: str | None = SECRET) -> httpx.Response:
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        return httpx.post(self.url, json=update, headers=headers, timeout=60)

    def send(self, update: dict[str, Any]) -> list[str]:
        """Post an update and return the texts the bot sent to its chat because of it."""
        chat_id = _chat_of(update)
        before = len(self.api.texts(chat_id))
        response = self.post(update)
        assert response.status_code == 200, response.text
        return self.api.texts(chat_id)[before:]


def _chat_of(update: dict[str, Any]) -> int:
    for key in ("message", "edited_message"):
        if key in update:
            return int(update[key]["chat"]["id"])
    return int(update["callback_query"]["message"]["chat"]["id"])


@pytest.fixture(scope="module")
def telegram_api() -> Iterator[TelegramApi]:
    api = TelegramApi(token=TOKEN).start()
    yield api
    api.stop()


@pytest.fixture(scope="module")
def telegram_bot(
    model: Path, tmp_path_factory: pytest.TempPathFactory, telegram_api: TelegramApi
) -> Iterator[TelegramBot]:
    """``citizenbot run`` with the Telegram channel pointed at the recording Bot API."""
    env = {
        "TELEGRAM_TOKEN": TOKEN,
        "TELEGRAM_SECRET_TOKEN": SECRET,
        "TELEGRAM_API_BASE": telegram_api.base_url,
        "REDIS_URL": "",
    }
    stack = Stack(var_dir=tmp_path_factory.mktemp("telegram-stack"), model=model,
                  extra_env=env).start()
    # the channel starts after the server (getMe), a moment after /status answers
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not telegram_api.of("getMe"):
        time.sleep(0.2)
    yield TelegramBot(stack, telegram_api)
    stack.stop()
