"""Values that cross the store's boundary: who acts, what is created, what is shown.

A :class:`TicketView` is a snapshot with personal data already masked, so a
view can be logged, listed or serialised without another thought; the
decrypted contact details only come out of ``TicketStore.contact``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from types import MappingProxyType
from typing import Any

KINDS = frozenset({"complaint", "report", "help", "suggestion", "inquiry", "callback", "emergency"})
#: the kind of case a citizen's intent opens (the NLU's intent names), for the chat
#: (actions/cases.py) and the hotline (connectors/hotline/understand.py) alike;
#: danger to life is recognised apart (nlu/emergency.py) and files kind "emergency"
KIND_BY_INTENT: Mapping[str, str] = MappingProxyType({
    "complain": "complaint",
    "report": "report",
    "request_help": "help",
    "suggest": "suggestion",
})


class Status(str, Enum):
    RECEIVED = "received"
    DISPATCHED = "dispatched"
    IN_PROGRESS = "in_progress"
    REPLIED = "replied"
    FOLLOW_UP = "follow_up"
    CLOSED = "closed"
    MERGED = "merged"

    def __str__(self) -> str:
        return self.value


class Role(str, Enum):
    CITIZEN = "citizen"
    DISPATCHER = "dispatcher"
    DEPARTMENT = "department"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    SYSTEM = "system"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Actor:
    """Who acts. Department staff carry their department; the store checks it."""

    role: Role
    name: str
    department: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "role", Role(self.role))

    @classmethod
    def citizen(cls, sender_id: str) -> Actor:
        """A citizen, named by their sender id (``channel:id``): the store lets them
        touch only the tickets they own. There is no anonymous citizen."""
        if not sender_id:
            raise ValueError("a citizen actor needs a sender id")
        return cls(Role.CITIZEN, sender_id)

    @classmethod
    def system(cls) -> Actor:
        return cls(Role.SYSTEM, "system")

    def label(self) -> str:
        return f"{self.role.value}:{self.name}" + (f"@{self.department}" if self.department else "")


@dataclass(frozen=True)
class NewTicket:
    channel: str
    kind: str
    summary: str
    description: str = ""
    sender_id: str | None = None
    source: str | None = None
    idempotency_key: str | None = None
    place: str | None = None
    occurred: str | None = None
    phone: str | None = None
    id_number: str | None = None
    name: str | None = None
    category: str | None = None
    category_confidence: float | None = None
    transcript: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[dict[str, Any]] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Contact:
    """Decrypted contact details, for staff who call the citizen back."""

    phone: str | None
    id_number: str | None
    name: str | None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@dataclass(frozen=True)
class TicketView:
    """A ticket as shown to anyone: free text and contact details are masked."""

    number: str
    status: Status
    kind: str
    channel: str
    sender_id: str | None
    source: str | None
    category: str | None
    predicted_category: str | None
    category_confidence: float | None
    department: str | None
    sla_class: str
    deadline: datetime
    created_at: datetime
    updated_at: datetime
    summary: str
    description: str
    place: str | None
    occurred: str | None
    version: int
    reply: str | None
    replied_at: datetime | None
    rating: int | None
    rating_solved: bool | None
    rating_comment: str | None
    reopen_count: int
    duplicate_of: str | None
    probable_duplicates: tuple[str, ...]
    transcript: tuple[dict[str, Any], ...]
    attachments: tuple[dict[str, Any], ...]
    facts: dict[str, Any]
    masked_phone: str
    masked_id_number: str
    masked_name: str
    paused: bool
    escalated_at: datetime | None
    closed_at: datetime | None
    purged: bool
    #: 公开答复: written by staff for publication; the only ticket text Open311 shows
    public_note: str | None = None

    @property
    def has_phone(self) -> bool:
        return bool(self.masked_phone)

    @property
    def is_open(self) -> bool:
        return self.status not in (Status.CLOSED, Status.MERGED)

    def public_dict(self) -> dict[str, Any]:
        """JSON-able form for listings and APIs; carries nothing personal unmasked."""
        return {
            "number": self.number,
            "status": self.status.value,
            "kind": self.kind,
            "channel": self.channel,
            "source": self.source,
            "category": self.category,
            "department": self.department,
            "sla_class": self.sla_class,
            "deadline": _iso(self.deadline),
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "summary": self.summary,
            "description": self.description,
            "place": self.place,
            "occurred": self.occurred,
            "version": self.version,
            "reply": self.reply,
            "replied_at": _iso(self.replied_at),
            "rating": self.rating,
            "rating_solved": self.rating_solved,
            "reopen_count": self.reopen_count,
            "duplicate_of": self.duplicate_of,
            "probable_duplicates": list(self.probable_duplicates),
            "phone": self.masked_phone or None,
            "id_number": self.masked_id_number or None,
            "name": self.masked_name or None,
            "paused": self.paused,
            "escalated": self.escalated_at is not None,
            "closed_at": _iso(self.closed_at),
            "public_note": self.public_note,
        }
