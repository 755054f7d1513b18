"""Tell the citizen, on the channel they used, that staff replied or closed their ticket.

The console does not talk to WeChat or Telegram itself: it asks Rasa to run
``EXTERNAL_ticket_update`` in the citizen's conversation
(``POST /conversations/{sender}/trigger_intent?output_channel=latest``); the
lead's rule then runs ``action_notify_citizen``, which reads the reply from the
store and asks for the 回访 rating. Called after the store change committed,
from a background task, so staff never wait on Rasa; the outcome is kept per
ticket (``console_notifications``) and shown with a retry button.

Hotline tickets (and any ticket without a sender) have no conversation to
write into: they are marked ``callback`` and listed for a phone call.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

import httpx
from starlette.concurrency import run_in_threadpool

from bot.console.accounts import Accounts
from bot.settings import Settings
from bot.tickets.errors import TicketError
from bot.tickets.store import TicketStore

log = logging.getLogger(__name__)
INTENT = "EXTERNAL_ticket_update"
#: channels without a conversation the bot can write into
CALL_BACK_CHANNELS = frozenset({"hotline", "phone"})


def needs_call_back(channel: str, sender_id: str | None) -> bool:
    return channel in CALL_BACK_CHANNELS or not sender_id


class Notifier:
    def __init__(self, settings: Settings, store: TicketStore, accounts: Accounts) -> None:
        self.settings = settings
        self.store = store
        self.accounts = accounts

    async def notify(self, number: str, event: str) -> str:
        """One attempt; returns the resulting status (sent, failed, callback)."""
        try:
            view = await run_in_threadpool(self.store.get, number)
        except TicketError as exc:
            log.warning("notify %s: %s", number, exc)
            return "failed"
        if needs_call_back(view.channel, view.sender_id):
            await run_in_threadpool(
                self.accounts.set_notification, view.number, event, "callback", attempt=False
            )
            return "callback"
        await run_in_threadpool(
            self.accounts.set_notification, view.number, event, "pending", attempt=False
        )
        token = self.settings.effective_rasa_token
        url = (
            f"{self.settings.rasa_url.rstrip('/')}/conversations/"
            f"{quote(view.sender_id or '', safe='')}/trigger_intent"
        )
        error: str | None = None
        try:
            async with httpx.AsyncClient(timeout=self.settings.console_notify_timeout) as client:
                response = await client.post(
                    url,
                    params={"output_channel": "latest", "token": token},
                    json={"name": INTENT, "entities": {"ticket_number": view.number}},
                )
            if response.status_code >= 400:
                # never the URL: it carries the token
                error = f"Rasa answered HTTP {response.status_code}: {response.text[:200]}"
        except httpx.HTTPError as exc:
            text = str(exc).replace(token, "***") if len(token) >= 8 else str(exc)
            error = f"{type(exc).__name__}: {text[:200]}"
        status = "failed" if error else "sent"
        if error:
            log.warning("notify %s failed: %s", view.number, error)
        await run_in_threadpool(
            self.accounts.set_notification, view.number, event, status, error, attempt=True
        )
        return status
