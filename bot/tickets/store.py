"""TicketStore: the one place where tickets are created and changed.

One public class, assembled from modules named for what they hold:

* :mod:`bot.tickets.store_views` — a row as a masked :class:`TicketView`
  (decrypting only to mask; the search text)
* :mod:`bot.tickets.store_core` — engine, clock, transactions, and the one
  audited way a row changes (``_record``, ``_change``: optimistic version check,
  hash-chained event)
* :mod:`bot.tickets.store_writes` — creation and every step of a ticket's life
* :mod:`bot.tickets.store_queries` — reading tickets, histories and lists
* :mod:`bot.tickets.store_contacts` — resolved contacts, contact details, claims
* :mod:`bot.tickets.store_maintenance` — 督办 of overdue tickets, audit
  verification, purge, key rotation

Callers import from here (or from :mod:`bot.tickets`) only; the split is the
store's own business.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from bot.settings import get_settings
from bot.tickets.store_contacts import CLAIM_ATTEMPTS, Contacts, ResolvedContact
from bot.tickets.store_core import LOOKS, RECHAIN_ATTEMPTS, UTC
from bot.tickets.store_maintenance import Maintenance
from bot.tickets.store_queries import Queries
from bot.tickets.store_views import Masker
from bot.tickets.store_writes import (
    DUPLICATE_CANDIDATES,
    DUPLICATE_KINDS,
    STRICT_DUPLICATE_THRESHOLD,
    Writes,
)

__all__ = [
    "CLAIM_ATTEMPTS",
    "DUPLICATE_CANDIDATES",
    "DUPLICATE_KINDS",
    "LOOKS",
    "RECHAIN_ATTEMPTS",
    "STRICT_DUPLICATE_THRESHOLD",
    "UTC",
    "Masker",
    "ResolvedContact",
    "TicketStore",
]

_stores: dict[str, TicketStore] = {}
_stores_lock = threading.Lock()


class TicketStore(Writes, Queries, Contacts, Maintenance):
    """Tickets in SQLite or PostgreSQL; safe to share between processes."""

    @classmethod
    def from_settings(cls) -> TicketStore:
        """One store per process and database URL (the engine's pool is reused)."""
        url = get_settings().database_url
        with _stores_lock:
            store = _stores.get(url)
            if store is None:
                store = _stores[url] = cls(url)
            return store

    def with_clock(self, clock: Callable[[], datetime]) -> TicketStore:
        """The same store reading time from ``clock`` (tests, replays)."""
        clone = object.__new__(TicketStore)
        clone.__dict__.update(self.__dict__)
        clone.clock = clock
        return clone
