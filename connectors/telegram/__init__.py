"""Telegram channel for Rasa, built on python-telegram-bot 22.

Declared in ``credentials.yml`` as ``connectors.telegram.TelegramInput:``; serves
``/webhooks/telegram/webhook`` (or polls with ``citizenbot run --telegram-polling``).
See ``docs/telegram.md``.
"""

from connectors.telegram.channel import TelegramInput, TelegramOutput

__all__ = ["TelegramInput", "TelegramOutput"]
