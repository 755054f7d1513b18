"""A web chat session's conversation as the citizen saw it, rebuilt from Rasa's tracker.

The widget restores its history from the server, not from the browser's
storage: the tracker store is the record (it survives a cleared browser, a
second tab, another device the session id was carried to), and it holds what
the *bot* said too — including notifications the staff console pushed while
the page was closed.

Only what the citizen saw is returned: their own texts (a button's title rather
than its ``/intent`` payload), the bot's texts, buttons and images. Slots,
intents, entities and metadata stay on the server.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, TypeGuard

from rasa.shared.core.constants import EXTERNAL_MESSAGE_PREFIX

#: session ids the widget (and rasa-webchat) get from the server: ``uuid4().hex``
SESSION_ID = re.compile(r"^[0-9a-f]{32}$")

#: messages returned at most; older ones are dropped (a long-lived session stays cheap)
HISTORY_LIMIT = 200


def is_session_id(value: Any) -> TypeGuard[str]:
    """A well-formed web chat session id: 128 random bits, nothing guessable.

    Refusing anything else keeps a web client from speaking as (or reading) a
    conversation of another channel, whose sender ids are phone-number-like
    Telegram chat ids or WeChat openids.
    """
    return isinstance(value, str) and bool(SESSION_ID.match(value))


def _user_text(event: dict[str, Any], buttons: dict[str, str]) -> str | None:
    text = event.get("text") or ""
    if not text or text.startswith(EXTERNAL_MESSAGE_PREFIX):
        return None  # console notifications are intents, not something the citizen typed
    display = (event.get("metadata") or {}).get("display")
    if isinstance(display, str) and display:
        return display
    return buttons.get(text, text)


def _bot_message(event: dict[str, Any]) -> dict[str, Any] | None:
    data = event.get("data") or {}
    message: dict[str, Any] = {"sender": "bot"}
    if event.get("text"):
        message["text"] = event["text"]
    if data.get("buttons"):
        message["buttons"] = [
            {"title": str(b.get("title", "")), "payload": str(b.get("payload", ""))}
            for b in data["buttons"]
        ]
    if data.get("image"):
        message["image"] = data["image"]
    if data.get("custom"):
        message["custom"] = data["custom"]
    return message if len(message) > 1 else None


def conversation(
    events: Iterable[dict[str, Any]], channel: str, limit: int = HISTORY_LIMIT
) -> list[dict[str, Any]]:
    """The citizen-visible messages of a tracker's events (``tracker.current_state`` form).

    Returns an empty list unless the citizen wrote at least once on ``channel``:
    a session id alone never opens a conversation held on another channel.
    """
    messages: list[dict[str, Any]] = []
    buttons: dict[str, str] = {}  # payload -> title of the last bot buttons
    spoke_here = False
    for event in events:
        kind = event.get("event")
        if kind == "user":
            text = _user_text(event, buttons)
            if event.get("input_channel") == channel:
                spoke_here = True
            if text is not None:
                messages.append(
                    {"sender": "user", "text": text, "timestamp": event.get("timestamp")}
                )
        elif kind == "bot":
            message = _bot_message(event)
            if message is not None:
                message["timestamp"] = event.get("timestamp")
                messages.append(message)
                buttons = {b["payload"]: b["title"] for b in message.get("buttons", [])}
    return messages[-limit:] if spoke_here else []
