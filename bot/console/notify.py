"""Tell the citizen, on the channel they used, that staff replied or closed their ticket.

The console does not talk to WeChat or Telegram itself: it asks Rasa to run
``EXTERNAL_ticket_update`` in the owner's conversation
(``POST /conversations/{channel:id}/trigger_intent?output_channel={channel}``);
a rule then runs ``action_notify_citizen``, which checks that the ticket is that
conversation's, reads the reply from the store and asks for the 回访 rating.

The output channel is the owner's own (the channel part of the ticket's sender
id, :mod:`bot.tickets.citizens`), never ``latest``: whoever spoke last in a
conversation, the reply goes where its owner is. A channel that could not
deliver makes Rasa answer an error; a channel that is not running makes Rasa
fall back to collecting the messages in its answer (``messages``), which
reached nobody. Both are recorded as ``failed``, never ``sent``.

Called after the store change committed, from a background task, so staff
never wait on Rasa; the outcome is kept per ticket (``console_notifications``)
and shown with a retry button. Tickets with no chat owner (hotline, Open311,
until a citizen claims one by its phone number) are marked ``callback`` and
listed for a phone call.
"""

from __future__ import annotations

import logging

import httpx
from starlette.concurrency import run_in_threadpool

from bot.console.accounts import Accounts
from bot.settings import Settings
from bot.tickets.citizens import parse
from bot.tickets.errors import TicketError
from bot.tickets.store import TicketStore

log = logging.getLogger(__name__)
INTENT = "EXTERNAL_ticket_update"


def needs_call_back(sender_id: str | None) -> bool:
    """No chat conversation to write into: staff phone the citizen instead.

    The owner decides, not the channel the ticket was filed on: a phone-filed
    ticket that a chat citizen claimed has that citizen's sender id and is
    notified in the chat.
    """
    return parse(sender_id) is None


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
        owner = parse(view.sender_id)
        if owner is None:
            await run_in_threadpool(
                self.accounts.set_notification, view.number, event, "callback", attempt=False
            )
            return "callback"
        await run_in_threadpool(
            self.accounts.set_notification, view.number, event, "pending", attempt=False
        )
        url = (
            f"{self.settings.rasa_url.rstrip('/')}/conversations/"
            f"{owner}/trigger_intent"  # as it is: Rasa does not unquote its path
        )
        error: str | None = None
        try:
            async with httpx.AsyncClient(timeout=self.settings.console_notify_timeout) as client:
                response = await client.post(
                    url,
                    params={"output_channel": owner.channel},
                    # a JWT in a header, never ?token= (URLs end up in logs)
                    headers=self.settings.rasa_api_headers(),
                    json={"name": INTENT, "entities": {"ticket_number": view.number}},
                )
            if response.status_code >= 400:
                error = f"Rasa answered HTTP {response.status_code}: {response.text[:200]}"
            elif "messages" in _json(response) and owner.channel != "rest":
                # REST cannot push: its conversation holds the reply for the integration
                error = f"the {owner.channel} channel is not running; nothing was delivered"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {str(exc)[:200]}"
        status = "failed" if error else "sent"
        if error:
            log.warning("notify %s failed: %s", view.number, error)
        await run_in_threadpool(
            self.accounts.set_notification, view.number, event, status, error, attempt=True
        )
        return status


def _json(response: httpx.Response) -> dict[str, object]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
