"""What a Telegram update means for the bot: a message to Rasa, a polite answer, or nothing.

Pure translation, no I/O, so every update kind is tested without a server:

* text → the text; ``/start`` and ``/help`` → configured payloads; any other
  typed ``/command`` loses its slash (a citizen cannot type Rasa intents);
* button press (``callback_query``) → the button's payload, shown as its title;
* location / venue → a place text the complaint form can use, coordinates in
  ``metadata["location"]``;
* photo or document *with* a caption → the caption, the file in
  ``metadata["attachments"]``; without one → "please send text";
* ``edited_message`` → a polite note, not a new turn: a ticket may already carry
  the original, and re-running a form on an edit would file it twice;
* stickers, voice, video, contacts, polls … → "please send text";
* updates that are not a citizen writing (channel posts, membership changes,
  inline queries) → ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from telegram import Message, Update

from connectors.telegram.texts import TelegramTexts

#: prefix of callback_data that refers to a stored payload (longer than Telegram's 64 bytes)
STORED_PAYLOAD = "p:"


@dataclass(frozen=True)
class ToBot:
    """Send ``text`` to Rasa as the citizen's message."""

    chat_id: int
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Say:
    """Answer the citizen directly; the bot is not involved."""

    chat_id: int
    text: str


@dataclass(frozen=True)
class Button:
    """A button press: its ``callback_data`` still has to be resolved to a payload."""

    chat_id: int
    callback_query_id: str
    data: str
    title: str | None


Inbound = ToBot | Say | Button | None


def _typed_text(text: str, texts: TelegramTexts) -> str:
    if not text.startswith("/"):
        return text
    command = text.split()[0].split("@")[0].lower()
    if command in texts.commands:
        return texts.commands[command]
    return text.lstrip("/").strip()


def _location(message: Message, texts: TelegramTexts) -> ToBot:
    venue = message.venue
    location = venue.location if venue else message.location
    assert location is not None
    label = " ".join(p for p in (venue.title, venue.address) if p) if venue else ""
    text = label or texts.location.format(
        latitude=location.latitude, longitude=location.longitude
    )
    metadata = {
        "location": {
            "latitude": location.latitude,
            "longitude": location.longitude,
            "label": label,
        }
    }
    return ToBot(message.chat_id, text, metadata)


def _attachment(message: Message) -> dict[str, Any] | None:
    if message.photo:
        biggest = message.photo[-1]
        return {"type": "image", "channel": "telegram", "file_id": biggest.file_id}
    if message.document:
        return {
            "type": "file",
            "channel": "telegram",
            "file_id": message.document.file_id,
            "name": message.document.file_name or "",
        }
    return None


def _button_title(update: Update) -> str | None:
    query = update.callback_query
    assert query is not None
    # an inaccessible (too old) message has no keyboard to read the title from
    markup = getattr(query.message, "reply_markup", None)
    for row in getattr(markup, "inline_keyboard", ()) or ():
        for button in row:
            if button.callback_data == query.data:
                return str(button.text)
    return None


def translate(update: Update, texts: TelegramTexts) -> Inbound:
    """The meaning of one update (see the module docstring)."""
    if update.callback_query is not None:
        query = update.callback_query
        chat = query.message.chat if query.message else None
        chat_id = chat.id if chat else query.from_user.id
        return Button(chat_id, query.id, query.data or "", _button_title(update))
    if update.edited_message is not None:
        return Say(update.edited_message.chat_id, texts.edited)
    message = update.message
    if message is None:
        return None  # channel posts, chat member changes, inline queries …
    if message.text:
        text = _typed_text(message.text.strip(), texts)
        return ToBot(message.chat_id, text) if text else None
    if message.location or message.venue:
        return _location(message, texts)
    attachment = _attachment(message)
    if attachment and message.caption:
        return ToBot(message.chat_id, message.caption.strip(), {"attachments": [attachment]})
    if message.new_chat_members or message.left_chat_member or message.pinned_message:
        return None  # service messages in groups: nobody asked anything
    return Say(message.chat_id, texts.please_send_text)
