"""Ticket store (工单): the rules of a ticket's life, shared by actions, ingester and console.

Names are imported on first use (PEP 562), so ``citizenbot --help`` and other
light importers of ``bot.tickets.commands`` do not pay for SQLAlchemy.
Opening a store connects: ``TicketStore(url)`` or ``TicketStore.from_settings()``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.tickets.errors import (
        ConflictError,
        IllegalTransition,
        InvalidInput,
        PermissionDenied,
        TicketError,
        TicketNotFound,
    )
    from bot.tickets.models import Actor, Contact, NewTicket, Role, Status, TicketView
    from bot.tickets.numbers import normalize_ticket_number
    from bot.tickets.store import TicketStore

_WHERE = {
    "ConflictError": "errors",
    "IllegalTransition": "errors",
    "InvalidInput": "errors",
    "PermissionDenied": "errors",
    "TicketError": "errors",
    "TicketNotFound": "errors",
    "Actor": "models",
    "Contact": "models",
    "NewTicket": "models",
    "Role": "models",
    "Status": "models",
    "TicketView": "models",
    "normalize_ticket_number": "numbers",
    "TicketStore": "store",
}

__all__ = [
    "Actor",
    "ConflictError",
    "Contact",
    "IllegalTransition",
    "InvalidInput",
    "NewTicket",
    "PermissionDenied",
    "Role",
    "Status",
    "TicketError",
    "TicketNotFound",
    "TicketStore",
    "TicketView",
    "normalize_ticket_number",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'bot.tickets' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"bot.tickets.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
