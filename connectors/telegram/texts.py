"""The Telegram channel's own texts, read once from ``data/channels/telegram_texts.yml``.

Citizen-facing wording is data an operator edits, never Python: the bot's
answers live in the Rasa domain; this file holds only what the channel says or
sends by itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

import yaml

from bot.settings import ROOT
from connectors.texts import service_error

TEXTS_FILE = ROOT / "data" / "channels" / "telegram_texts.yml"


@dataclass(frozen=True)
class TelegramTexts:
    """What the channel says to the citizen, and sends to the bot on their behalf."""

    please_send_text: str
    edited: str
    service_error: str
    button_expired: str
    #: ``/start`` → payload; commands a citizen types, mapped to what the bot understands
    commands: MappingProxyType[str, str]
    #: ``str.format`` template with ``latitude`` and ``longitude``
    location: str


def load_texts(path: Path = TEXTS_FILE) -> TelegramTexts:
    """Read the file; a missing key is a startup error, not a blank message later."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    citizen, bot = data.get("citizen") or {}, data.get("bot") or {}
    try:
        return TelegramTexts(
            please_send_text=str(citizen["please_send_text"]),
            edited=str(citizen["edited"]),
            service_error=service_error(),
            button_expired=str(citizen["button_expired"]),
            commands=MappingProxyType({"/start": str(bot["start"]), "/help": str(bot["help"])}),
            location=str(bot["location"]),
        )
    except KeyError as error:
        raise ValueError(f"{path}: missing {error}") from error


@lru_cache(maxsize=1)
def default_texts() -> TelegramTexts:
    """The texts of this checkout, loaded once per process."""
    return load_texts()
