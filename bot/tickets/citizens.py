"""Who a citizen is: (channel, id on that channel), written ``channel:id``.

Every channel hands Rasa a sender id of this form, so the conversation, the
tracker and the tickets of a WeChat openid can never be reached by someone
who types the same string as a REST ``sender`` or a Telegram chat id: the
channel is part of the name and only that channel's connector writes it.
Output channels turn the id back into the platform's recipient and refuse an
id of another channel, so a reply cannot leak across channels either.

Channels that have no chat identity (the hotline, Open311) file tickets with
no owner; a citizen claims such a ticket by proving the phone number on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: channels whose messages arrive as a Rasa conversation
CHAT_CHANNELS = frozenset({"rest", "webchat", "wechat", "telegram"})
SEPARATOR = ":"
#: what a platform id may hold: every platform's ids fit (openids, chat ids, uuid hex), and
#: the id can stand in a URL path as it is (Rasa's HTTP API does not unquote its path)
PLATFORM_ID = re.compile(r"^[A-Za-z0-9_.@-][A-Za-z0-9_.@:-]{0,127}$")


class ForeignSender(ValueError):
    """A sender id that does not belong to the channel asked to deliver to it."""


@dataclass(frozen=True)
class Citizen:
    channel: str
    id: str

    def __str__(self) -> str:
        return f"{self.channel}{SEPARATOR}{self.id}"


def sender_id(channel: str, platform_id: str | int) -> str:
    """The Rasa sender id for ``platform_id`` on ``channel`` (``wechat:o6_bmjrPTl``)."""
    return f"{channel}{SEPARATOR}{platform_id}"


def is_platform_id(value: str) -> bool:
    """Can ``value`` be a citizen's id on a channel (REST clients choose theirs)?"""
    return bool(PLATFORM_ID.match(value))


def parse(sender: str | None) -> Citizen | None:
    """The citizen behind a sender id, or None for an id of no chat channel."""
    if not sender:
        return None
    channel, sep, platform_id = sender.partition(SEPARATOR)
    if not sep or channel not in CHAT_CHANNELS or not is_platform_id(platform_id):
        return None
    return Citizen(channel, platform_id)


def recipient(channel: str, sender: str) -> str:
    """The platform id to deliver to; :class:`ForeignSender` if ``sender`` is not ours."""
    citizen = parse(sender)
    if citizen is None or citizen.channel != channel:
        raise ForeignSender(f"sender of another channel cannot be reached on {channel}")
    return citizen.id
