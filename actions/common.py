"""What every action needs: the ticket store, the conversation record, the channel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from rasa_sdk import Tracker

from bot.settings import ROOT, get_settings
from bot.tickets import Actor, TicketStore

#: Shortest text we accept as the description of a case; "我要投诉" alone is not one.
MIN_DESCRIPTION_CHARS = 8


@lru_cache(maxsize=1)
def store() -> TicketStore:
    """One store per action-server process: the engine and its pool are reused."""
    return TicketStore.from_settings()


def citizen(tracker: Tracker) -> Actor:
    """The citizen of this conversation: the store lets them touch only their own tickets.

    The sender id is ``channel:id`` (:mod:`bot.tickets.citizens`), written by the
    channel the message came through, so no one can type their way into it.
    """
    return Actor.citizen(tracker.sender_id)


def channel_of(tracker: Tracker) -> str:
    return tracker.get_latest_input_channel() or "rest"


def _events_since(tracker: Tracker, action: str | None) -> list[dict[str, Any]]:
    events = list(tracker.events)
    if action:
        for index in range(len(events) - 1, -1, -1):
            event = events[index]
            if event.get("event") == "action" and event.get("name") == action:
                # keep the user message that triggered the action
                return events[max(index - 1, 0) :]
    return events


def attachments(tracker: Tracker, *, since_action: str | None = None) -> list[dict[str, Any]]:
    """Evidence the channels passed along (e.g. WeChat image media ids), oldest first."""
    found: list[dict[str, Any]] = []
    for event in _events_since(tracker, since_action):
        if event.get("event") == "user":
            found.extend((event.get("metadata") or {}).get("attachments") or [])
    return found


def carries_attachment(tracker: Tracker) -> bool:
    """The latest message is a picture or file, not an answer typed by the citizen."""
    return bool((tracker.latest_message.get("metadata") or {}).get("attachments"))


def transcript(tracker: Tracker, *, since_action: str | None = None) -> list[dict[str, Any]]:
    """The conversation as the citizen saw it, oldest first.

    With ``since_action``, only what followed the last run of that action
    (the start of the current case) is returned.
    """
    events = _events_since(tracker, since_action)
    lines: list[dict[str, Any]] = []
    for event in events:
        kind = event.get("event")
        if kind not in ("user", "bot"):
            continue
        text = event.get("text")
        if not text or (kind == "user" and text.startswith("/")):
            continue
        stamp = event.get("timestamp")
        lines.append(
            {
                "speaker": "citizen" if kind == "user" else "bot",
                "text": text,
                "time": datetime.fromtimestamp(stamp).astimezone().isoformat() if stamp else None,
            }
        )
    return lines


def message_key(tracker: Tracker, purpose: str) -> str:
    """Idempotency key for work triggered by the latest user message.

    Rasa re-runs the prediction for the same message when an action call is
    retried, so channel + sender + message id identifies one case exactly once.
    """
    message_id = tracker.latest_message.get("message_id") or ""
    return f"{channel_of(tracker)}:{tracker.sender_id}:{message_id}:{purpose}"


def request_id(tracker: Tracker) -> str | None:
    """The request id the channel gave the latest message (``connectors.rasa_hooks`` sets it).

    Also bound to this task's log records, so the action server's log lines, the
    Rasa server's and the ticket (its ``facts``) carry the same id.
    """
    from bot.logging import request_id_var

    value = (tracker.latest_message.get("metadata") or {}).get("request_id")
    value = str(value) if value else None
    request_id_var.set(value)
    return value


def local_now() -> datetime:
    return datetime.now(ZoneInfo(get_settings().timezone))


@dataclass(frozen=True)
class DateFormats:
    """How a date reads to citizens: wording is data (``data/formats.yml``), not code."""

    date: str
    date_time: str


FORMATS_FILE = ROOT / "data" / "formats.yml"


def load_formats(path: Path = FORMATS_FILE) -> DateFormats:
    """Read and check the formats; a missing key or a bad field is an error naming the file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"{path}: cannot read the date formats: {error}") from error
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping with 'date' and 'date_time'")
    formats = {}
    for key in ("date", "date_time"):
        text = data.get(key)
        if not isinstance(text, str) or not text:
            raise ValueError(f"{path}: '{key}' must be a format such as {{month}}月{{day}}日")
        try:
            text.format(month=12, day=4, time="17:30")
        except (KeyError, IndexError, ValueError) as error:
            raise ValueError(
                f"{path}: '{key}' may use only {{month}}, {{day}} and {{time}}: {error!r}"
            ) from error
        formats[key] = text
    return DateFormats(**formats)


#: read when the action server loads, so a broken file stops it at start, not mid-answer
DATE_FORMATS = load_formats()


def format_deadline(value: datetime | None, *, with_time: bool = False) -> str:
    """A deadline as citizens read it, in the service's time zone: 12月4日 (12月4日17:30)."""
    if value is None:
        return ""
    local = value.astimezone(ZoneInfo(get_settings().timezone))
    text = DATE_FORMATS.date_time if with_time else DATE_FORMATS.date
    return text.format(month=local.month, day=local.day, time=f"{local:%H:%M}")


def latest_entity(tracker: Tracker, entity: str) -> str | None:
    return next(tracker.get_latest_entity_values(entity), None)


def response_text(domain: dict[str, Any], name: str) -> str:
    """First text variant of a domain response, for composing one message from parts."""
    variants = domain.get("responses", {}).get(name) or [{}]
    return str(variants[0].get("text", ""))
