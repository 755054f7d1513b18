"""Ingesting transcript files: every call becomes a routed ticket or a resolved contact.

The library behind ``citizenbot ingest`` and the console's upload page::

    summary = ingest_paths(["calls.jsonl"], progress=lambda calls, nbytes: ...)
    summary = ingest_file(upload.file, "calls.txt")
    summary.as_dict()

Work is done in batches of :data:`BATCH_CALLS` calls, so per-call overhead stays
small next to the NLU, which is the real cost (~10 ms per citizen turn):

1. calls already known (a ticket or resolved contact with key ``hotline:<call_id>``,
   or an earlier call of this run) are skipped with one query per batch, before
   any parsing, so re-ingesting a file is fast and changes nothing;
2. the citizen turns of the whole batch go to the NLU process at once, and while it
   parses batch *n + 1* this process writes batch *n* (two processes: the parse and
   the writing are both Python work, which threads would take turns at);
3. tickets are created one by one through ``TicketStore.create`` (each is its own
   transaction with its audit chain and routing: the rules of a ticket's life stay
   in the store); resolved contacts go in one transaction per batch.

Thread-safe: no module state but the shared NLU (loaded once, under a lock) and
the store (its own pool); call it from a background thread as is. The model is
loaded only when a batch has something new to parse.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from connectors.hotline import messages
from connectors.hotline.formats import Call, Problem, TranscriptReader
from connectors.hotline.nlu import NLUFailed, Parser, load_nlu
from connectors.hotline.understand import (
    TurnText,
    Understanding,
    citizen_texts,
    read_turns,
    understand,
    units_of,
)

if TYPE_CHECKING:
    from bot.tickets.store import TicketStore

CHANNEL = "hotline"
BATCH_CALLS = 64
#: (calls done, bytes read) so far; called after each batch and at the end of each file.
#: A call is done once it is a ticket, a resolved contact, a duplicate or an error.
Progress = Callable[[int, int], None]
#: characters of a summary listed with its ticket or contact (masked)
LISTED_SUMMARY_CHARS = 60
#: the audit trail names the ingester as the actor that created the ticket
ACTOR_NAME = "hotline-ingest"


class ModelUnavailable(RuntimeError):
    """No trained model to understand the calls with (the message says what to do)."""


@dataclass
class IngestSummary:
    """What one ingest did. ``errors``: not ingested; ``warnings``: ingested, changed."""

    files: list[str] = field(default_factory=list)
    calls_read: int = 0
    tickets_created: int = 0
    resolved_contacts: int = 0
    duplicates_skipped: int = 0
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    #: one entry per ticket created: call_id, number, kind, status, department, summary
    tickets: list[dict[str, Any]] = field(default_factory=list)
    #: one entry per resolved contact recorded: call_id, kind, intent, service, summary
    contacts: list[dict[str, Any]] = field(default_factory=list)
    bytes_read: int = 0
    seconds: float = 0.0

    @property
    def nothing_read(self) -> bool:
        """No call at all could be read (the CLI's non-zero exit)."""
        return self.calls_read == 0

    @property
    def calls_per_second(self) -> float:
        return self.calls_read / self.seconds if self.seconds > 0 else 0.0

    def add_problem(self, problem: Problem) -> None:
        (self.warnings if problem.severity == "warning" else self.errors).append(problem)

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": list(self.files),
            "calls_read": self.calls_read,
            "tickets_created": self.tickets_created,
            "resolved_contacts": self.resolved_contacts,
            "duplicates_skipped": self.duplicates_skipped,
            "errors": [p.as_dict() for p in self.errors],
            "warnings": [p.as_dict() for p in self.warnings],
            "tickets": [dict(t) for t in self.tickets],
            "contacts": [dict(c) for c in self.contacts],
            "bytes_read": self.bytes_read,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class _Batch:
    calls: list[Call]
    #: per call: every turn read once (normalized for the model, as written for the record)
    turns: list[list[TurnText]]
    units: list[list[Any]]
    leftovers: list[list[str]]
    future: Future[list[dict[str, Any]]] | None


def _key(call_id: str) -> str:
    return f"{CHANNEL}:{call_id}"


def _listed(summary: str) -> str:
    """A summary as listed after an ingest: masked (phone, 身份证), shortened."""
    from bot.privacy import mask_text

    text = mask_text(summary or "")
    return text if len(text) <= LISTED_SUMMARY_CHARS else text[: LISTED_SUMMARY_CHARS - 1] + "…"


def count_calls(
    source: IO[bytes] | IO[str] | Path | str,
    name: str | None = None,
    *,
    format: str = "auto",
    encoding: str = "auto",
    timezone: str = "Asia/Shanghai",
) -> int:
    """How many calls a file holds (read only, nothing parsed by the model): the N of
    "call n of N". Cheap next to ingesting: reading is ~1 % of the work."""
    tz = ZoneInfo(timezone)
    if isinstance(source, str | Path):
        with Path(source).open("rb") as handle:
            return count_calls(handle, name or str(source), format=format, encoding=encoding,
                               timezone=timezone)
    reader = TranscriptReader(source, name or "<upload>", format=format, encoding=encoding, tz=tz)
    return sum(1 for item in reader if isinstance(item, Call))


class Ingester:
    """One ingest run over one or more files, sharing the duplicate memory between them."""

    def __init__(
        self,
        *,
        store: TicketStore | None = None,
        nlu: Parser | None = None,
        model: Path | str | None = None,
        progress: Progress | None = None,
        batch_calls: int = BATCH_CALLS,
    ) -> None:
        if store is None:
            from bot.tickets.store import TicketStore

            store = TicketStore.from_settings()
        from bot.tickets.models import Actor, Role

        self.store = store
        self._nlu = nlu
        self._model = model
        self.progress = progress
        self.batch_calls = batch_calls
        self.summary = IngestSummary()
        self.actor = Actor(Role.SYSTEM, ACTOR_NAME)
        self.tz = ZoneInfo(store.settings.timezone)
        self._seen: set[str] = set()
        self._bytes_before = 0
        #: calls read and not yet done (in a batch being parsed or written)
        self._in_flight = 0

    @property
    def nlu(self) -> Parser:
        if self._nlu is None:
            try:
                self._nlu = load_nlu(self._model)
            except (FileNotFoundError, NLUFailed) as exc:
                raise ModelUnavailable(messages.NO_MODEL.format(error=exc)) from exc
        return self._nlu

    # -- files ---------------------------------------------------------------------

    def ingest_file(
        self,
        source: IO[bytes] | IO[str],
        name: str,
        *,
        format: str = "auto",
        encoding: str = "auto",
    ) -> None:
        started = time.perf_counter()
        self.summary.files.append(name)
        reader = TranscriptReader(source, name, format=format, encoding=encoding, tz=self.tz)
        pending: _Batch | None = None
        batch: list[Call] = []
        try:
            for item in reader:
                if isinstance(item, Problem):
                    self.summary.add_problem(item)
                    continue
                self.summary.calls_read += 1
                if item.call_id in self._seen:
                    self.summary.duplicates_skipped += 1
                    continue
                self._seen.add(item.call_id)
                self._in_flight += 1
                batch.append(item)
                if len(batch) >= self.batch_calls:
                    current = self._start(batch, reader)
                    batch = []
                    if pending is not None:
                        self._finish(pending, reader)
                    pending = current
            if batch:
                current = self._start(batch, reader)
                if pending is not None:
                    self._finish(pending, reader)
                pending = current
            if pending is not None:
                self._finish(pending, reader)
                pending = None
        finally:
            if pending is not None and pending.future is not None:
                with contextlib.suppress(Exception):
                    pending.future.result()  # never leave the NLU thread working for nobody
            self._in_flight = 0  # what a failure left unfinished is not counted as to do
            self._report(reader)
            self.summary.bytes_read = self._bytes_before + reader.bytes_read
            self._bytes_before = self.summary.bytes_read
            self.summary.seconds += time.perf_counter() - started

    def _report(self, reader: TranscriptReader) -> None:
        if self.progress is not None:
            done = self.summary.calls_read - self._in_flight
            self.progress(done, self._bytes_before + reader.bytes_read)

    # -- batches -------------------------------------------------------------------

    def _start(self, calls: list[Call], reader: TranscriptReader) -> _Batch:
        """Drop known calls, and hand the rest's citizen turns to the NLU thread."""
        known = self.store.seen_keys(_key(c.call_id) for c in calls)
        fresh: list[Call] = []
        for call in calls:
            if _key(call.call_id) in known:
                self.summary.duplicates_skipped += 1
            elif not call.citizen_turns:
                self._problem(call, messages.NO_CITIZEN)
            else:
                fresh.append(call)
        self._in_flight -= len(calls) - len(fresh)
        turns, units, leftovers = [], [], []
        for call in fresh:
            call_turns = read_turns(call)
            call_units, call_leftovers = units_of(citizen_texts(call, call_turns))
            turns.append(call_turns)
            units.append(call_units)
            leftovers.append(call_leftovers)
        texts = [u.text for call_units in units for u in call_units]
        future = self.nlu.submit(texts) if texts else None
        return _Batch(fresh, turns, units, leftovers, future)

    def _parses(self, batch: _Batch) -> Iterator[tuple[Call, list[dict[str, Any]] | Exception]]:
        """Each call with its parses, or the exception that stopped its parsing."""
        try:
            flat = batch.future.result() if batch.future is not None else []
        except Exception:
            # find the call that broke the batch: parse call by call
            for call, call_units in zip(batch.calls, batch.units, strict=True):
                try:
                    yield call, self.nlu.submit([u.text for u in call_units]).result()
                except Exception as exc:
                    yield call, exc
            return
        offset = 0
        for call, call_units in zip(batch.calls, batch.units, strict=True):
            yield call, flat[offset : offset + len(call_units)]
            offset += len(call_units)

    def _finish(self, batch: _Batch, reader: TranscriptReader) -> None:
        """Understand the parsed batch and write it: tickets one by one, contacts at once."""
        from bot.tickets.errors import TicketError
        from bot.tickets.store import ResolvedContact

        contacts: list[tuple[Call, ResolvedContact]] = []
        self._in_flight -= len(batch.calls)
        for (call, parses), turns, call_units, leftovers in zip(
            self._parses(batch), batch.turns, batch.units, batch.leftovers, strict=True
        ):
            if isinstance(parses, Exception):
                self._problem(call, messages.NLU_FAILED.format(error=parses))
                continue
            meaning = understand(call, call_units, parses, leftovers, turns)
            if not meaning.ticket:
                contacts.append((call, self._contact(call, meaning)))
                continue
            try:
                view = self.store.create(self._new_ticket(call, meaning), self.actor)
            except (TicketError, ValueError) as exc:
                self._problem(call, messages.STORE_FAILED.format(error=exc))
                continue
            self.summary.tickets_created += 1
            self.summary.tickets.append(
                {
                    "call_id": call.call_id,
                    "number": view.number,
                    "kind": view.kind,
                    "status": view.status.value,
                    "department": view.department,
                    "summary": _listed(view.summary),
                }
            )
        if contacts:
            try:
                recorded = set(self.store.record_resolved([c for _, c in contacts]))
            except TicketError as exc:
                for call, _ in contacts:
                    self._problem(call, messages.STORE_FAILED.format(error=exc))
            else:
                self.summary.resolved_contacts += len(recorded)
                for call, contact in contacts:
                    if contact.idempotency_key in recorded:
                        self.summary.contacts.append(
                            {
                                "call_id": call.call_id,
                                "kind": contact.kind,
                                "intent": contact.intent,
                                "service": contact.service,
                                "summary": _listed(contact.summary),
                            }
                        )
                # recorded meanwhile by a concurrent ingest of the same calls
                self.summary.duplicates_skipped += len(contacts) - len(recorded)
        self._report(reader)

    def _problem(self, call: Call, message: str) -> None:
        self.summary.add_problem(Problem(call.file, call.line, message, call.call_id))

    # -- records -------------------------------------------------------------------

    def _transcript(self, call: Call, meaning: Understanding) -> list[dict[str, Any]]:
        # as the call system wrote it; numbers said in words become digits, so the
        # store's masking finds every phone and ID number in it
        return [
            {"speaker": t.speaker, "text": text, "time": call.turn_time(t)}
            for t, text in zip(call.turns, meaning.written, strict=True)
        ]

    def _new_ticket(self, call: Call, meaning: Understanding) -> Any:
        from bot.tickets.models import NewTicket

        return NewTicket(
            channel=CHANNEL,
            kind=meaning.kind,
            summary=meaning.summary,
            description=meaning.description,
            source=call.call_id,
            idempotency_key=_key(call.call_id),
            place=meaning.place,
            occurred=meaning.occurred,
            phone=call.caller or meaning.phone,
            id_number=meaning.id_number,
            category=meaning.category,
            category_confidence=meaning.category_confidence,
            transcript=self._transcript(call, meaning),
            facts={
                "call_id": call.call_id,
                "started_at": call.started_at.isoformat(),
                "agent": call.agent,
                "intent": meaning.intent,
                "reason": meaning.reason,
                **({"danger": meaning.danger} if meaning.danger else {}),
                "intents": list(meaning.intents),
                "service": meaning.service,
                "truncated": call.truncated,
                "file": call.file,
                "line": call.line,
            },
        )

    def _contact(self, call: Call, meaning: Understanding) -> Any:
        from bot.tickets.store import ResolvedContact

        return ResolvedContact(
            channel=CHANNEL,
            idempotency_key=_key(call.call_id),
            summary=meaning.summary,
            kind=meaning.kind,
            source=call.call_id,
            intent=meaning.intent,
            category=meaning.category,
            category_confidence=meaning.category_confidence,
            service=meaning.service,
            agent=call.agent,
            started_at=call.started_at,
        )


def ingest_file(
    source: IO[bytes] | IO[str] | Path | str,
    name: str | None = None,
    *,
    format: str = "auto",
    encoding: str = "auto",
    store: TicketStore | None = None,
    nlu: Parser | None = None,
    model: Path | str | None = None,
    progress: Progress | None = None,
) -> IngestSummary:
    """Ingest one file: a path, or an open file object (binary, or text already decoded).

    ``name`` is what problems are reported against (default: the path or ``<upload>``).
    Raises :class:`ModelUnavailable` when there is something to parse and no model.
    """
    ingester = Ingester(store=store, nlu=nlu, model=model, progress=progress)
    if isinstance(source, str | Path):
        path = Path(source)
        try:
            with path.open("rb") as handle:
                ingester.ingest_file(handle, name or str(path), format=format, encoding=encoding)
        except OSError as exc:
            _unreadable(ingester.summary, name or str(path), exc)
    else:
        ingester.ingest_file(source, name or "<upload>", format=format, encoding=encoding)
    return ingester.summary


def ingest_paths(
    paths: Iterable[Path | str],
    *,
    format: str = "auto",
    encoding: str = "auto",
    store: TicketStore | None = None,
    nlu: Parser | None = None,
    model: Path | str | None = None,
    progress: Progress | None = None,
) -> IngestSummary:
    """Ingest several files in one run; an unreadable file is an error, the others go on."""
    ingester = Ingester(store=store, nlu=nlu, model=model, progress=progress)
    for path in map(Path, paths):
        try:
            with path.open("rb") as handle:
                ingester.ingest_file(handle, str(path), format=format, encoding=encoding)
        except OSError as exc:
            _unreadable(ingester.summary, str(path), exc)
    return ingester.summary


def _unreadable(summary: IngestSummary, name: str, exc: OSError) -> None:
    if name not in summary.files:
        summary.files.append(name)
    summary.add_problem(Problem(name, 0, messages.UNREADABLE.format(error=exc.strerror or exc)))
