"""Reading transcript files: JSON Lines or the call systems' plain text, UTF-8 or GB18030.

The reader streams: a file is read in 64 KiB chunks, so a month of calls never sits
in memory and progress can be reported by bytes. Every problem is yielded as a
:class:`Problem` naming the file and line, and reading goes on with the next line
or call: one broken export line must not cost the day's other calls.

Formats (``docs/transcripts.md``)::

    {"call_id": "C1", "started_at": "2026-11-27T09:15:00+08:00", "caller": "138…",
     "agent": "王", "turns": [{"speaker": "citizen", "text": "…", "start": 1.5}]}

    # C1 2026-11-27T09:15:00+08:00 13812345678
    坐席：您好，12345热线。
    市民：我要投诉……
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Any, Literal
from zoneinfo import ZoneInfo

from connectors.hotline import messages
from connectors.hotline.vocabulary import COLONS, SPEAKER_LABELS

Format = Literal["auto", "jsonl", "text"]
Encoding = Literal["auto", "utf-8", "gb18030"]
FORMATS: tuple[str, ...] = ("auto", "jsonl", "text")
ENCODINGS: tuple[str, ...] = ("auto", "utf-8", "gb18030")

CHUNK_BYTES = 64 * 1024
#: a longer line is not a transcript line (a binary file, a runaway export): skipped
MAX_LINE_BYTES = 4 * 1024 * 1024
#: one turn is stored up to this length; beyond it the transcriber has run away
MAX_TURN_CHARS = 10_000

_BOMS = {codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE}
_PREFIX = re.compile(
    "^\\s*(?P<label>"
    + "|".join(sorted((re.escape(k) for k in SPEAKER_LABELS), key=len, reverse=True))
    + f")\\s*[{COLONS}]\\s*(?P<text>.*)$",
    re.DOTALL,
)
_DATE = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}$")
_TIME = re.compile(r"^\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:?\d{2}|Z)?$")


@dataclass(frozen=True)
class Turn:
    speaker: str  # "citizen" | "agent"
    text: str
    #: seconds from the start of the call, when the call system gives them
    start: float | None = None
    end: float | None = None


@dataclass(frozen=True)
class Call:
    """One call as read from a file, before any understanding."""

    call_id: str
    started_at: datetime
    turns: tuple[Turn, ...]
    file: str
    line: int
    caller: str | None = None
    agent: str | None = None
    truncated: bool = False

    @property
    def citizen_turns(self) -> list[Turn]:
        return [t for t in self.turns if t.speaker == "citizen" and t.text.strip()]

    def turn_time(self, turn: Turn) -> str:
        """When a turn was said: call start plus its offset, ISO 8601."""
        offset = timedelta(seconds=turn.start) if turn.start is not None else timedelta()
        return (self.started_at + offset).isoformat()


@dataclass(frozen=True)
class Problem:
    """Something in a file that could not be used as it is.

    ``error``: the line or call was not ingested. ``warning``: it was, changed
    (a skipped line inside a call, a truncated turn).
    """

    file: str
    line: int
    message: str
    call_id: str | None = None
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        call = f" [{self.call_id}]" if self.call_id else ""
        return f"{self.file}:{self.line}:{call} {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "call_id": self.call_id,
            "severity": self.severity,
            "message": self.message,
        }


class _Invalid(ValueError):
    """A field of a call is unusable; the message is already the staff-facing text."""


def parse_time(value: Any, tz: ZoneInfo) -> datetime:
    """ISO 8601 (``Z`` allowed, a space for ``T`` too); a time without zone is local."""
    if not isinstance(value, str) or not value.strip():
        raise _Invalid(messages.BAD_STARTED_AT.format(value=value))
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise _Invalid(messages.BAD_STARTED_AT.format(value=value)) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)


def _optional_str(obj: dict[str, Any], name: str) -> str | None:
    value = obj.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise _Invalid(messages.BAD_FIELD.format(field=name))
    return value.strip() or None


def _offset(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


class TranscriptReader:
    """Iterate the calls and problems of one file; ``bytes_read`` follows the progress.

    ``source`` is a binary file object (a path opened ``rb``, an upload's spooled
    file) or a text one (already decoded; ``encoding`` is then ignored).
    """

    def __init__(
        self,
        source: IO[bytes] | IO[str],
        name: str,
        *,
        format: str = "auto",
        encoding: str = "auto",
        tz: ZoneInfo,
    ) -> None:
        if format not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, not {format!r}")
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, not {encoding!r}")
        self.source = source
        self.name = name
        self.format = format
        self.encoding = encoding
        self.tz = tz
        self.bytes_read = 0
        #: the encoding actually used, once known
        self.detected_encoding: str | None = None
        self.detected_format: str | None = None

    # -- lines ---------------------------------------------------------------------

    def _detect_encoding(self, head: bytes) -> str | None:
        if head.startswith(codecs.BOM_UTF8):
            return "utf-8-sig"
        if head[:2] in _BOMS:
            return None
        if self.encoding == "utf-8":
            return "utf-8-sig"
        if self.encoding == "gb18030":
            return "gb18030"
        try:  # incremental: the 64 KiB head may end inside a character
            codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        except UnicodeDecodeError:
            return "gb18030"
        return "utf-8-sig"

    def _raw_lines(self, head: bytes) -> Iterator[tuple[int, bytes | None]]:
        """(line number, bytes without the newline); ``None`` for a line too long to keep."""
        pending = head
        start = 0
        number = 0
        skipping = False
        while True:
            newline = pending.find(b"\n", start)
            if newline >= 0:
                raw = pending[start:newline]
                self.bytes_read += newline + 1 - start
                start = newline + 1
                number += 1
                if skipping:
                    skipping = False
                    yield number, None
                else:
                    yield number, raw
                continue
            rest = len(pending) - start
            if rest > MAX_LINE_BYTES:
                # drop what we have of this line, keep reading to its end
                self.bytes_read += rest
                pending, start, skipping = b"", 0, True
            chunk = self.source.read(CHUNK_BYTES)
            if not chunk:
                if start < len(pending) or skipping:
                    self.bytes_read += len(pending) - start
                    number += 1
                    yield number, None if skipping else pending[start:]
                return
            pending = pending[start:] + chunk  # type: ignore[operator]
            start = 0

    def _lines(self) -> Iterator[tuple[int, str] | Problem]:
        head = self.source.read(CHUNK_BYTES)
        if isinstance(head, str):  # a text stream: already decoded
            self.detected_encoding = "text"
            text = head + self.source.read()  # type: ignore[operator]
            for number, text_line in enumerate(text.splitlines(), 1):
                self.bytes_read += len(text_line.encode()) + 1
                yield number, text_line.lstrip("\ufeff") if number == 1 else text_line
            return
        encoding = self._detect_encoding(head)
        if encoding is None:
            yield Problem(self.name, 1, messages.UTF16)
            return
        self.detected_encoding = "utf-8" if encoding == "utf-8-sig" else encoding
        for number, raw in self._raw_lines(head):
            if raw is None:
                too_long = messages.LINE_TOO_LONG.format(limit=MAX_LINE_BYTES)
                yield Problem(self.name, number, too_long)
                continue
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            try:
                yield number, raw.decode(self.detected_encoding).rstrip("\r")
            except UnicodeDecodeError:
                yield Problem(
                    self.name, number, messages.UNDECODABLE.format(encoding=self.detected_encoding)
                )

    # -- calls ---------------------------------------------------------------------

    def __iter__(self) -> Iterator[Call | Problem]:
        lines = self._lines()
        fmt = self.format
        buffered: list[tuple[int, str] | Problem] = []
        if fmt == "auto":
            for item in lines:
                buffered.append(item)
                if isinstance(item, tuple) and item[1].strip():
                    fmt = "jsonl" if item[1].lstrip().startswith("{") else "text"
                    break
            else:
                fmt = "jsonl"
        self.detected_format = fmt
        stream = _chain(buffered, lines)
        yield from (self._jsonl(stream) if fmt == "jsonl" else self._text(stream))

    def _cap(self, turns: list[Turn]) -> tuple[tuple[Turn, ...], bool]:
        truncated = False
        capped = []
        for turn in turns:
            if len(turn.text) > MAX_TURN_CHARS:
                turn = Turn(turn.speaker, turn.text[:MAX_TURN_CHARS], turn.start, turn.end)
                truncated = True
            capped.append(turn)
        return tuple(capped), truncated

    def _finish(self, call: Call) -> Iterator[Call | Problem]:
        turns, truncated = self._cap(list(call.turns))
        if truncated:
            yield Problem(
                self.name,
                call.line,
                messages.TURN_TRUNCATED.format(limit=MAX_TURN_CHARS),
                call.call_id,
                "warning",
            )
            call = Call(
                call.call_id,
                call.started_at,
                turns,
                call.file,
                call.line,
                call.caller,
                call.agent,
                truncated=True,
            )
        yield call

    def _jsonl(self, stream: Iterator[tuple[int, str] | Problem]) -> Iterator[Call | Problem]:
        for item in stream:
            if isinstance(item, Problem):
                yield item
                continue
            number, line = item
            if not line.strip():
                continue
            call_id = None
            try:
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise _Invalid(
                        messages.BAD_JSON.format(error=f"{exc.msg} (column {exc.colno})")
                    ) from exc
                if not isinstance(obj, dict):
                    raise _Invalid(messages.NOT_OBJECT)
                call_id = _optional_str(obj, "call_id")
                if not call_id:
                    raise _Invalid(messages.MISSING_CALL_ID)
                started_at = parse_time(obj.get("started_at"), self.tz)
                raw_turns = obj.get("turns")
                if not isinstance(raw_turns, list):
                    raise _Invalid(messages.BAD_TURNS)
                turns = [self._json_turn(i, t) for i, t in enumerate(raw_turns, 1)]
                call = Call(
                    call_id=call_id,
                    started_at=started_at,
                    turns=tuple(t for t in turns if t.text.strip()),
                    file=self.name,
                    line=number,
                    caller=_optional_str(obj, "caller"),
                    agent=_optional_str(obj, "agent"),
                )
            except _Invalid as exc:
                yield Problem(self.name, number, str(exc), call_id)
                continue
            yield from self._finish(call)

    def _json_turn(self, index: int, raw: Any) -> Turn:
        try:
            if not isinstance(raw, dict):
                raise _Invalid(messages.BAD_TURNS)
            speaker = SPEAKER_LABELS.get(str(raw.get("speaker", "")).strip().lower())
            if speaker is None:
                raise _Invalid(messages.BAD_SPEAKER.format(speaker=raw.get("speaker")))
            text = raw.get("text", "")
            if not isinstance(text, str):
                raise _Invalid(messages.BAD_TEXT)
        except _Invalid as exc:
            raise _Invalid(messages.BAD_TURN.format(index=index, error=exc)) from exc
        return Turn(speaker, text.strip(), _offset(raw.get("start")), _offset(raw.get("end")))

    def _header(self, line: str) -> tuple[str, datetime, str | None]:
        """``# call_id started_at [caller]``; a date and time split by a space are rejoined."""
        tokens = line.lstrip("#").split()
        if not tokens:
            raise _Invalid(messages.MISSING_CALL_ID)
        call_id, rest = tokens[0], tokens[1:]
        if len(rest) >= 2 and _DATE.match(rest[0]) and _TIME.match(rest[1]):
            rest = [f"{rest[0]}T{rest[1]}", *rest[2:]]
        if not rest:
            raise _Invalid(messages.BAD_STARTED_AT.format(value=None))
        started_at = parse_time(rest[0], self.tz)
        caller = " ".join(rest[1:]) or None
        return call_id, started_at, caller

    def _text(self, stream: Iterator[tuple[int, str] | Problem]) -> Iterator[Call | Problem]:
        header: tuple[str, datetime, str | None, int] | None = None
        turns: list[Turn] = []
        skipping = False  # inside a call whose header was refused

        def flush() -> Iterator[Call | Problem]:
            if header is not None:
                call_id, started_at, caller, line = header
                yield from self._finish(
                    Call(call_id, started_at, tuple(turns), self.name, line, caller)
                )

        for item in stream:
            if isinstance(item, Problem):
                yield item
                continue
            number, line = item
            stripped = line.strip()
            if not stripped:
                yield from flush()
                header, turns, skipping = None, [], False
                continue
            if stripped.startswith("#"):
                yield from flush()
                header, turns, skipping = None, [], False
                try:
                    call_id, started_at, caller = self._header(stripped)
                except _Invalid as exc:
                    tokens = stripped.lstrip("#").split()
                    yield Problem(self.name, number, str(exc), tokens[0] if tokens else None)
                    skipping = True
                    continue
                header = (call_id, started_at, caller, number)
                continue
            if skipping:
                continue
            if header is None:
                yield Problem(self.name, number, messages.NO_HEADER)
                skipping = True  # one report per headless block
                continue
            match = _PREFIX.match(stripped)
            if match is None:
                yield Problem(self.name, number, messages.NO_PREFIX, header[0], "warning")
                continue
            text = match.group("text").strip()
            if text:
                turns.append(Turn(SPEAKER_LABELS[match.group("label").lower()], text))
        yield from flush()


def _chain(
    first: list[tuple[int, str] | Problem], rest: Iterator[tuple[int, str] | Problem]
) -> Iterator[tuple[int, str] | Problem]:
    yield from first
    yield from rest


__all__ = ["Call", "Problem", "TranscriptReader", "Turn"]
