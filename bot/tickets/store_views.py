"""How the store shows a ticket row: decrypted only to mask, never handed out raw.

Every :class:`TicketView`, every search text and every audit payload goes
through the masker here: ``mask_text`` plus the citizen's own name and numbers,
which no regex can spot. Reading a row and masking it need no transaction of
their own, so this is the store's bottom layer; :mod:`bot.tickets.store_core`
stands on it to mask what it writes into the audit trail.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.engine import Connection, Row

from bot.privacy import mask_id_number, mask_name, mask_phone, mask_text, search_form
from bot.tickets.crypto import PiiCipher
from bot.tickets.errors import TicketError
from bot.tickets.models import Status, TicketView
from bot.tickets.schema import duplicate_links, tickets
from bot.tickets.times import local

Masker = Callable[[str], str]

_OTHER = tickets.alias("other")


def _mask_deep(value: Any, mask: Masker = mask_text) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, Mapping):
        return {k: _mask_deep(v, mask) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_deep(v, mask) for v in value]
    return value


class Views:
    """Masked views of ticket rows (the base of :class:`~bot.tickets.store.TicketStore`)."""

    #: set by :class:`~bot.tickets.store_core.StoreCore`
    cipher: PiiCipher
    tz: ZoneInfo

    @staticmethod
    def _mask_field(token: str | None, value: str | None, mask: Callable[[str | None], str]) -> str:
        if not token:
            return ""
        return mask(value) if value is not None else "******"

    def _known(self, row: Row) -> tuple[str | None, str | None, str | None]:
        """The row's own phone, ID number and name, or None where unreadable."""
        values = []
        for token in (row.phone_enc, row.id_number_enc, row.name_enc):
            try:
                values.append(self.cipher.decrypt(token))
            except TicketError:
                values.append(None)
        return values[0], values[1], values[2]

    def _masker(self, row: Row, known: tuple[str | None, ...] | None = None) -> Masker:
        """mask_text plus the citizen's own name and numbers, which no regex can spot."""
        phone, id_number, name = known if known is not None else self._known(row)

        def mask(text: str) -> str:
            return mask_text(text, names=(name,), numbers=(id_number, phone))

        return mask

    def _search_text(self, row: Row, values: Mapping[str, Any], mask: Masker) -> str | None:
        """What staff search: the masked text, so a search shows no more than the list.

        Searching a full name or phone number must not single out the ticket whose
        list entry shows ``李*`` / ``138****5678``; staff who may call the citizen
        back open the audited contact details instead.
        """
        fields = ("summary", "description", "place", "public_note")
        if row.search_text is not None and not any(f in values for f in fields):
            return None
        parts = [values.get(f, getattr(row, f)) for f in fields]
        return search_form(mask("\n".join(p for p in parts if p)))

    def _duplicates_of(self, conn: Connection, ids: list[int]) -> dict[int, list[str]]:
        if not ids:
            return {}
        rows = conn.execute(
            select(duplicate_links.c.ticket_id, _OTHER.c.number)
            .join(_OTHER, _OTHER.c.id == duplicate_links.c.candidate_id)
            .where(duplicate_links.c.ticket_id.in_(ids))
            .order_by(duplicate_links.c.score.desc())
        )
        found: dict[int, list[str]] = {}
        for ticket_id, number in rows:
            found.setdefault(ticket_id, []).append(number)
        return found

    def _view(
        self, conn: Connection, row: Row, duplicates: dict[int, list[str]] | None = None
    ) -> TicketView:
        if duplicates is None:
            duplicates = self._duplicates_of(conn, [row.id])
        transcript = json.loads(row.transcript or "[]")
        phone, id_number, name = known = self._known(row)
        mask = self._masker(row, known)
        return TicketView(
            number=row.number,
            status=Status(row.status),
            kind=row.kind,
            channel=row.channel,
            sender_id=row.sender_id,
            source=mask(row.source) if row.source else row.source,
            category=row.category,
            predicted_category=row.predicted_category,
            category_confidence=row.category_confidence,
            department=row.department,
            sla_class=row.sla_class,
            deadline=local(row.deadline, self.tz),  # type: ignore[arg-type]
            created_at=local(row.created_at, self.tz),  # type: ignore[arg-type]
            updated_at=local(row.updated_at, self.tz),  # type: ignore[arg-type]
            summary=mask(row.summary),
            description=mask(row.description),
            place=row.place,
            occurred=row.occurred,
            version=row.version,
            reply=mask(row.reply) if row.reply is not None else None,
            replied_at=local(row.replied_at, self.tz),
            rating=row.rating,
            rating_solved=row.rating_solved,
            rating_comment=mask(row.rating_comment) if row.rating_comment else None,
            reopen_count=row.reopen_count,
            duplicate_of=row.duplicate_of,
            probable_duplicates=tuple(duplicates.get(row.id, ())),
            transcript=tuple(_mask_deep(item, mask) for item in transcript),
            attachments=tuple(
                _mask_deep(item, mask) for item in json.loads(row.attachments or "[]")
            ),
            facts=_mask_deep(json.loads(row.facts or "{}"), mask),
            masked_phone=self._mask_field(row.phone_enc, phone, mask_phone),
            masked_id_number=self._mask_field(row.id_number_enc, id_number, mask_id_number),
            masked_name=self._mask_field(row.name_enc, name, mask_name),
            paused=row.paused_at is not None,
            escalated_at=local(row.escalated_at, self.tz),
            closed_at=local(row.closed_at, self.tz),
            purged=row.purged_at is not None,
            public_note=row.public_note,
        )

    def _views(self, conn: Connection, rows: list[Row]) -> list[TicketView]:
        duplicates = self._duplicates_of(conn, [row.id for row in rows])
        return [self._view(conn, row, duplicates) for row in rows]
