"""The audit chain: each event's HMAC covers the previous event's and a snapshot of the ticket.

Editing or deleting an event row behind the store's back breaks the chain
from that event on; the ticket row keeps the head hash and the event count, so
removing the newest event is caught too. Each event carries a keyed digest of
every field of the ticket row as that event left it, so a field edited in the
database afterwards is named. The key lives outside the database (``AUDIT_KEY``
or ``var/audit_key.secret``), and the heads are appended to a checkpoint file
outside it too. Payloads never hold personal data in the clear (free text is
masked and kept beside the chain under its HMAC), so purging personal data
never has to rewrite history.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

GENESIS = "0" * 64
#: payload keys holding free text: kept in the event's ``content`` column (which
#: purge empties), while the chain covers only their HMAC (``content_hmac``)
FREE_TEXT = ("text", "summary", "place", "comment")


def keyed_digest(key: bytes, text: str) -> str:
    """HMAC-SHA256: proves content to whoever holds the key, tells nothing to anyone else.

    A bare sha256 of a phone number or 身份证 number is reversed in a fraction of a
    second by trying every number; an HMAC with a key kept outside the database
    is not.
    """
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


def split_content(payload: dict[str, Any], key: bytes) -> tuple[dict[str, Any], str | None]:
    """(payload for the chain, content JSON or None): free text out, its HMAC in."""
    content = {k: payload.pop(k) for k in FREE_TEXT if payload.get(k) not in (None, "")}
    for k in FREE_TEXT:
        payload.pop(k, None)
    if not content:
        return payload, None
    text = canonical_json(content)
    payload["content_hmac"] = keyed_digest(key, text)
    return payload, text


def content_problem(
    label: str, payload: Mapping[str, Any], content: str | None, key: bytes
) -> str | None:
    """Why an event's stored content does not match the HMAC in its chained payload."""
    if content is None:
        return None  # purged (or never had any)
    expected = payload.get("content_hmac")
    if expected is None or not hmac.compare_digest(keyed_digest(key, content), str(expected)):
        return f"{label}: content was altered (content HMAC mismatch)"
    return None


def canonical_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def _stamp(value: datetime) -> str:
    return value.replace(tzinfo=None).isoformat(timespec="microseconds")


#: ticket columns outside the snapshot: the chain's own bookkeeping and derived text
SNAPSHOT_EXCLUDED = frozenset({"event_count", "last_event_hash", "search_text"})


def field_value(value: Any) -> str:
    """One stored value as text, the same whether just written or read back.

    1 and 1.0 read the same (a Float column returns a float for an int written),
    datetimes are naive UTC to the microsecond (what both databases keep).
    """
    if value is None:
        return "\x00"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return _stamp(value)
    if isinstance(value, int | float):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    return str(value)


def snapshot(key: bytes, fields: Mapping[str, Any]) -> dict[str, str]:
    """A keyed digest of every ticket field: names an edited field, reveals no value.

    Per field, so that ``audit verify`` can say *which* field was changed behind
    the store's back; keyed, so that the digests of a phone number or a name
    cannot be tested against guesses by anyone without the audit key.
    """
    return {
        name: keyed_digest(key, f"{name}\x00{field_value(value)}")[:16]
        for name, value in sorted(fields.items())
        if name not in SNAPSHOT_EXCLUDED
    }


def event_hash(
    number: str, row: Mapping[str, Any], prev_hash: str, key: bytes | None = None
) -> str:
    """The event's link in the chain.

    Events with a snapshot (``state``) are chained with HMAC-SHA256 under the
    audit key, which the database does not hold: whoever can write the tables
    cannot recompute the chain after an edit. Events written before the key
    existed (no ``state``) keep their plain sha256 links.
    """
    body: dict[str, Any] = {
        "ticket": number,
        "seq": row["seq"],
        "action": row["action"],
        "actor": [row["actor_role"], row["actor_name"], row["actor_department"]],
        "at": _stamp(row["at"]),
        "from": row["from_status"],
        "to": row["to_status"],
        "reason": row["reason"],
        "payload": row["payload"],
    }
    state = row.get("state")
    if state is None:
        return hashlib.sha256((prev_hash + canonical_json(body)).encode("utf-8")).hexdigest()
    if key is None:
        raise ValueError("a keyed audit event needs the audit key")
    body["state"] = state
    return keyed_digest(key, prev_hash + canonical_json(body))


def edited_fields(state: str, current: Mapping[str, Any], key: bytes) -> list[str]:
    """Fields of the ticket row that differ from the snapshot of its newest event."""
    recorded: dict[str, str] = json.loads(state)
    now = snapshot(key, current)
    return sorted(
        name for name, digest in recorded.items()
        if not hmac.compare_digest(now.get(name, ""), digest)
    )


def verify_chain(
    number: str,
    rows: Iterable[Mapping[str, Any]],
    *,
    head: str,
    count: int,
    status: str,
    key: bytes | None = None,
    current: Mapping[str, Any] | None = None,
) -> list[str]:
    """Problems in one ticket's chain, first one first; empty when intact.

    ``current`` is the ticket row as stored now: its fields must match the
    snapshot the newest event recorded.
    """
    problems: list[str] = []
    prev = GENESIS
    expected_seq = 1
    last_to: str | None = None
    last_state: str | None = None
    last_seq = 0
    keyed = False
    seen = 0
    for row in rows:
        seen += 1
        label = f"{number} event #{row['seq']} (id {row['id']}, {row['action']})"
        if row["seq"] != expected_seq:
            problems.append(f"{label}: expected event #{expected_seq} — an event was deleted")
            return problems
        if row["prev_hash"] != prev:
            problems.append(f"{label}: prev_hash does not match the previous event")
            return problems
        if keyed and row.get("state") is None:
            problems.append(f"{label}: unkeyed event after keyed ones — the chain was rewritten")
            return problems
        try:
            expected = event_hash(number, row, prev, key)
        except ValueError:
            problems.append(f"{label}: keyed event, but no audit key to check it")
            return problems
        if expected != row["hash"]:
            problems.append(f"{label}: content was altered (hash mismatch)")
            return problems
        if key is not None:
            problem = content_problem(
                label, decode_payload(row["payload"]), row.get("content"), key
            )
            if problem:
                problems.append(problem)
                return problems
        prev = row["hash"]
        expected_seq += 1
        keyed = keyed or row.get("state") is not None
        last_state, last_seq = row.get("state"), row["seq"]
        if row["to_status"]:
            last_to = row["to_status"]
    if seen != count or prev != head:
        problems.append(
            f"{number}: ticket records {count} events ending in {head[:12]}, "
            f"found {seen} ending in {prev[:12]} — the newest event was deleted or added"
        )
    elif last_state is not None and current is not None and key is not None:
        fields = edited_fields(last_state, current, key)
        if fields:
            problems.append(
                f"{number}: field(s) {', '.join(fields)} of the ticket row differ from the "
                f"snapshot audited with event #{last_seq} — edited outside the store"
            )
    elif last_to is not None and last_to != status:
        problems.append(f"{number}: status {status} differs from the audit trail ({last_to})")
    return problems


class CheckpointLog:
    """Heads of the audit chains, appended to a file the database cannot rewrite.

    One line per written event: ``number seq hash``. ``audit verify`` checks
    that every checkpointed event is still in the database with that hash, so
    rewriting history (even by someone holding the audit key) or cutting the
    newest events off a chain shows, unless the file is rewritten too: keep it
    on other storage, or ship it with the logs.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, heads: Iterable[tuple[str, int, str]]) -> None:
        lines = "".join(f"{number} {seq} {digest}\n" for number, seq, digest in heads)
        if not lines:
            return
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, lines.encode("ascii"))
        finally:
            os.close(fd)

    def heads(self) -> dict[str, tuple[int, str]]:
        """The newest checkpointed (seq, hash) of each ticket number."""
        found: dict[str, tuple[int, str]] = {}
        if not self.path.exists():
            return found
        for line in self.path.read_text(encoding="ascii", errors="replace").splitlines():
            parts = line.split()
            if len(parts) != 3 or not parts[1].isdigit():
                continue
            number, seq, digest = parts[0], int(parts[1]), parts[2]
            if seq >= found.get(number, (0, ""))[0]:
                found[number] = (seq, digest)
        return found


def decode_payload(text: str) -> dict[str, Any]:
    return json.loads(text) if text else {}
