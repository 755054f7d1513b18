"""The channel's own texts and the custom-menu table, read once from ``data/channels/``.

Citizen-facing wording is data an operator edits, never Python: the bot's
answers live in the Rasa domain, and the few sentences the channel must say by
itself (an unreadable message type, a failure) live in ``wechat_texts.yml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from bot.settings import ROOT
from connectors.texts import service_error

DATA_DIR = ROOT / "data" / "channels"


@dataclass(frozen=True)
class ChannelTexts:
    """What the channel says to the citizen, and sends to the bot on their behalf."""

    please_send_text: str
    service_error: str
    unknown_menu: str
    choose_hint: str
    subscribe: str
    image: str
    location: str
    menu: MappingProxyType[str, str]


def _read(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping")
    return data


def load_texts(data_dir: Path = DATA_DIR) -> ChannelTexts:
    """Read both files; a missing key is a startup error, not a blank message later."""
    texts = _read(data_dir / "wechat_texts.yml")
    menu = _read(data_dir / "wechat_menu.yml").get("menu") or {}
    citizen, bot = texts.get("citizen") or {}, texts.get("bot") or {}
    try:
        return ChannelTexts(
            please_send_text=str(citizen["please_send_text"]),
            service_error=service_error(),
            unknown_menu=str(citizen["unknown_menu"]),
            choose_hint=str(citizen["choose_hint"]),
            subscribe=str(bot["subscribe"]),
            image=str(bot["image"]),
            location=str(bot["location"]),
            menu=MappingProxyType({str(k): str(v) for k, v in menu.items()}),
        )
    except KeyError as error:
        raise ValueError(f"{data_dir / 'wechat_texts.yml'}: missing {error}") from error


@lru_cache(maxsize=1)
def default_texts() -> ChannelTexts:
    """The texts of this checkout, loaded once per process."""
    return load_texts()
