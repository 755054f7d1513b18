"""Limits every channel applies before a message reaches Rasa.

A citizen's message is a few sentences; 2,000 characters (the web widget's own
cut) holds the longest real complaint in our data. Anything longer is cut here,
at the channel, so one pasted document cannot hold the NLU, and with it every
other conversation on the server, for seconds.
"""

from __future__ import annotations

#: longest text handed to the bot, in characters
MAX_MESSAGE_CHARS = 2000


def cap(text: str) -> str:
    """``text`` cut to :data:`MAX_MESSAGE_CHARS` characters."""
    return text[:MAX_MESSAGE_CHARS]
