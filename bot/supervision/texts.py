"""The few sentences the public reads from supervision and Open311, from ``data/public/``.

Public wording is data an operator edits, never Python (like the bot's answers in
``bot/domain``); a missing key is a start-up error, not an empty field later.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from bot.settings import ROOT

TEXTS_FILE = ROOT / "data" / "public" / "texts.yml"


@dataclass(frozen=True)
class PublicTexts:
    operator: str
    service_description: str
    request_accepted: str
    open_data_title: str
    other: str
    no_keyword: str


def load_texts(path: Path = TEXTS_FILE) -> PublicTexts:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    try:
        return PublicTexts(
            operator=str(data["operator"]),
            service_description=str(data["open311"]["service_description"]),
            request_accepted=str(data["open311"]["request_accepted"]),
            open_data_title=str(data["open_data"]["title"]),
            other=str(data["open_data"]["other"]),
            no_keyword=str(data["hotspots"]["no_keyword"]),
        )
    except (KeyError, TypeError) as error:
        raise ValueError(f"{path}: missing {error}") from error


@lru_cache(maxsize=1)
def public_texts() -> PublicTexts:
    """The texts of this checkout, read once per process."""
    return load_texts()
