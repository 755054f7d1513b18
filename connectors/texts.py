"""What any channel may have to say by itself, read once from the Rasa domain.

When Rasa or the action server fails, a channel still owes the citizen an
answer; that sentence is the domain's ``utter_service_error`` (one home for it,
edited with the bot's other answers), not a copy per channel.
"""

from __future__ import annotations

from functools import lru_cache

import yaml

from bot.settings import ROOT

DOMAIN_FILE = ROOT / "bot" / "domain" / "chat.yml"
SERVICE_ERROR_RESPONSE = "utter_service_error"


@lru_cache(maxsize=1)
def service_error() -> str:
    """The apology for a failure ("您的消息没有丢…"), from the domain."""
    domain = yaml.safe_load(DOMAIN_FILE.read_text(encoding="utf-8")) or {}
    for variant in (domain.get("responses") or {}).get(SERVICE_ERROR_RESPONSE) or []:
        if variant.get("text"):
            return str(variant["text"])
    raise ValueError(f"{DOMAIN_FILE}: no text for {SERVICE_ERROR_RESPONSE}")
