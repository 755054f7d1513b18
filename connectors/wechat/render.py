"""Turn the bot's messages into WeChat texts, and a citizen's digit back into a button.

WeChat has no buttons in text conversations, so buttons become numbered
choices ("1. 我要投诉") and a bare digit in the next message picks one. A text
message may carry at most :data:`TEXT_LIMIT_BYTES` bytes; longer answers are
cut at sentence ends so no message stops mid-sentence.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

#: WeChat's limit on the content of one text message (UTF-8 bytes)
TEXT_LIMIT_BYTES = 2048

#: a piece ends after one of these (kept with the piece), or at a line break
_SENTENCE_END = re.compile(r"(?<=[。！？!?；;…\n])")
_CHOICE = re.compile(r"\s*(\d{1,2})\s*[.。、)）]?\s*")


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def _hard_split(text: str, limit: int) -> list[str]:
    """Cut a sentence longer than ``limit`` bytes at character boundaries."""
    pieces, current = [], ""
    for char in text:
        if current and _size(current + char) > limit:
            pieces.append(current)
            current = ""
        current += char
    if current:
        pieces.append(current)
    return pieces


def split_text(text: str, limit: int = TEXT_LIMIT_BYTES) -> list[str]:
    """Split ``text`` into messages of at most ``limit`` bytes, at sentence ends when possible."""
    text = text.strip()
    if not text:
        return []
    if _size(text) <= limit:
        return [text]
    chunks: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(text):
        if not sentence:
            continue
        if _size(current + sentence) <= limit:
            current += sentence
            continue
        if current.strip():
            chunks.append(current.strip())
        current = ""
        if _size(sentence) > limit:
            *full, current = _hard_split(sentence, limit)
            chunks.extend(piece.strip() for piece in full if piece.strip())
        else:
            current = sentence
    if current.strip():
        chunks.append(current.strip())
    return chunks


def pack(parts: Iterable[str], limit: int = TEXT_LIMIT_BYTES, sep: str = "\n\n") -> list[str]:
    """Join messages into as few texts as fit: a passive reply carries one, the
    customer-service API allows only a few per 48 hours."""
    packed: list[str] = []
    for part in parts:
        for piece in split_text(part, limit):
            if packed and _size(packed[-1] + sep + piece) <= limit:
                packed[-1] += sep + piece
            else:
                packed.append(piece)
    return packed


def number_buttons(
    text: str, buttons: list[dict[str, Any]], start: int = 1, hint: str = ""
) -> str:
    """``text`` followed by one line per button, numbered from ``start``."""
    lines = [text.strip()] if text and text.strip() else []
    for index, button in enumerate(buttons, start):
        lines.append(f"{index}. {button.get('title') or button.get('payload') or ''}")
    if buttons and hint:
        lines.append(hint)
    return "\n".join(lines)


def choice_number(text: str) -> int | None:
    """The number a citizen picked ("2", "２", "2.", " 2 "), or None for anything else."""
    normalized = unicodedata.normalize("NFKC", text or "")
    match = _CHOICE.fullmatch(normalized)
    return int(match.group(1)) if match else None


def safe_cdata(text: str) -> str:
    """wechatpy writes text into CDATA sections, which ``]]>`` would close early."""
    return text.replace("]]>", "]] >")


@dataclass
class RenderedTurn:
    """One bot turn as WeChat texts, plus the payloads its numbers stand for."""

    texts: list[str] = field(default_factory=list)
    payloads: list[str] = field(default_factory=list)


def render_messages(messages: Iterable[dict[str, Any]], hint: str = "") -> RenderedTurn:
    """Render Rasa's collected messages (text, buttons, image, custom) as texts.

    Buttons are numbered across the whole turn, so two button sets in one turn
    never share a number.
    """
    parts: list[str] = []
    payloads: list[str] = []
    last_choices = -1  # the part after which the hint goes, once per turn
    for message in messages:
        text = str(message.get("text") or "")
        buttons = [b for b in message.get("buttons") or [] if isinstance(b, dict)]
        if buttons:
            text = number_buttons(text, buttons, start=len(payloads) + 1)
            payloads.extend(str(b.get("payload") or b.get("title") or "") for b in buttons)
            last_choices = len(parts)
        custom = message.get("custom")
        if isinstance(custom, dict) and isinstance(custom.get("text"), str):
            text = "\n".join(filter(None, [text, custom["text"]]))
        for key in ("image", "attachment"):
            if message.get(key):
                text = "\n".join(filter(None, [text, str(message[key])]))
        if text.strip():
            parts.append(safe_cdata(text))
    if hint and 0 <= last_choices < len(parts):
        parts[last_choices] += "\n" + hint
    return RenderedTurn(texts=pack(parts), payloads=payloads)
