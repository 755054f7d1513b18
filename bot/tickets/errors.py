"""Exceptions of the ticket store; every one is a :class:`TicketError`.

Callers (actions, console) catch ``TicketError`` to answer politely and know
that nothing was changed: the store raises before committing anything.
"""

from __future__ import annotations


class TicketError(Exception):
    """Base class: the request was refused and the store is unchanged."""


class TicketNotFound(TicketError, LookupError):
    pass


class IllegalTransition(TicketError):
    """The ticket's current status does not allow the requested action."""


class PermissionDenied(TicketError):
    """The actor's role or department does not allow the requested action."""


class ConflictError(TicketError):
    """Someone else changed the ticket since it was read (optimistic locking)."""


class InvalidInput(TicketError, ValueError):
    """An argument is malformed (unknown department, empty reason, score out of range)."""
