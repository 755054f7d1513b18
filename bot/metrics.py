"""Prometheus metrics in the text exposition format, without a client library.

``prometheus_client`` is not part of the locked dependency set (and a second
pip run breaks Rasa, see DESIGN.md), and what we need is small: labelled
counters and histograms kept in one process, rendered on scrape by
``/webhooks/ops/metrics`` (:mod:`connectors.ops`). Each Rasa server exposes its
own numbers; Prometheus sums them over the scrape targets.

Figures that live in the database (tickets created, SLA breaches) are read at
scrape time by :func:`ticket_samples`, so every action server's tickets count
without the action servers needing their own endpoint.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "REGISTRY",
    "Counter",
    "Histogram",
    "Registry",
    "render",
]

#: seconds; NLU on two cores is ~15 ms, a whole turn with actions ~50–500 ms
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{name}="{_escape(str(value))}"' for name, value in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


@dataclass
class Counter:
    """A monotonically increasing count per label set."""

    name: str
    help: str
    labelnames: tuple[str, ...] = ()
    _values: dict[tuple[str, ...], float] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        key = tuple(str(label) for label in labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, *labels: str) -> float:
        return self._values.get(tuple(labels), 0.0)

    def lines(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        with self._lock:
            for key, value in sorted(self._values.items()):
                out.append(f"{self.name}{_labels(self.labelnames, key)} {_number(value)}")
        return out


@dataclass
class Histogram:
    """Cumulative buckets, sum and count per label set (seconds)."""

    name: str
    help: str
    labelnames: tuple[str, ...] = ()
    buckets: tuple[float, ...] = DEFAULT_BUCKETS
    _series: dict[tuple[str, ...], list[float]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def observe(self, value: float, *labels: str) -> None:
        key = tuple(str(label) for label in labels)
        with self._lock:
            # per series: one slot per bucket (non-cumulative), then sum, then count
            series = self._series.setdefault(key, [0.0] * (len(self.buckets) + 2))
            for index, bound in enumerate(self.buckets):
                if value <= bound:
                    series[index] += 1
                    break
            series[-2] += value
            series[-1] += 1

    def count(self, *labels: str) -> float:
        series = self._series.get(tuple(labels))
        return series[-1] if series else 0.0

    def lines(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        with self._lock:
            for key, series in sorted(self._series.items()):
                running = 0.0
                for index, bound in enumerate(self.buckets):
                    running += series[index]
                    le = f'le="{_number(bound)}"'
                    out.append(
                        f"{self.name}_bucket{_labels(self.labelnames, key, le)} {_number(running)}"
                    )
                inf = 'le="+Inf"'
                out.append(f"{self.name}_bucket{_labels(self.labelnames, key, inf)} "
                           f"{_number(series[-1])}")
                out.append(f"{self.name}_sum{_labels(self.labelnames, key)} {_number(series[-2])}")
                out.append(
                    f"{self.name}_count{_labels(self.labelnames, key)} {_number(series[-1])}"
                )
        return out


@dataclass
class Registry:
    """The process's metrics, in registration order."""

    metrics: list[Counter | Histogram] = field(default_factory=list)

    def counter(self, name: str, help: str, labelnames: Iterable[str] = ()) -> Counter:
        metric = Counter(name, help, tuple(labelnames))
        self.metrics.append(metric)
        return metric

    def histogram(self, name: str, help: str, labelnames: Iterable[str] = ()) -> Histogram:
        metric = Histogram(name, help, tuple(labelnames))
        self.metrics.append(metric)
        return metric


REGISTRY = Registry()

MESSAGES = REGISTRY.counter(
    "citizenbot_messages_total", "Citizen messages handled, per channel", ["channel"]
)
MESSAGE_SECONDS = REGISTRY.histogram(
    "citizenbot_message_seconds", "Time to handle one citizen message (NLU, dialogue, actions)",
    ["channel"],
)
NLU_SECONDS = REGISTRY.histogram("citizenbot_nlu_seconds", "NLU parse latency", [])
WEBHOOK_ERRORS = REGISTRY.counter(
    "citizenbot_webhook_errors_total",
    "Webhook requests answered with a 5xx status, per channel path",
    ["channel"],
)
SERVICE_ERRORS = REGISTRY.counter(
    "citizenbot_service_errors_total",
    "Messages answered with an apology because a backing service failed "
    "(action_server, lock_store, tracker_store)",
    ["cause"],
)


def gauge_lines(name: str, help: str, kind: str, samples: Iterable[tuple[dict[str, str], float]]
                ) -> list[str]:
    """Lines for values computed at scrape time (no state kept here)."""
    out = [f"# HELP {name} {help}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        names = tuple(sorted(labels))
        out.append(f"{name}{_labels(names, [labels[n] for n in names])} {_number(value)}")
    return out


def render(registry: Registry = REGISTRY, extra: Iterable[str] = ()) -> str:
    """The whole exposition (``text/plain; version=0.0.4``)."""
    lines: list[str] = []
    for metric in registry.metrics:
        lines.extend(metric.lines())
    lines.extend(extra)
    return "\n".join(lines) + "\n"


def ticket_samples(database_url: str) -> list[str]:
    """Tickets created per channel and open tickets past their deadline, from the store.

    Read from the database, not counted in a process: any action server may
    create a ticket, and the count then survives restarts.
    """
    from datetime import datetime, timezone

    from sqlalchemy import create_engine, func, select

    from bot.tickets.schema import tickets

    engine = _engine(database_url, create_engine)
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    with engine.connect() as connection:
        created = connection.execute(
            select(tickets.c.channel, func.count()).group_by(tickets.c.channel)
        ).all()
        breached = connection.execute(
            select(func.count()).where(
                # the deadline is for the reply: replied tickets are no longer late
                tickets.c.status.in_(("received", "dispatched", "in_progress")),
                tickets.c.paused_at.is_(None),
                tickets.c.deadline < now,
            )
        ).scalar_one()
        escalated = connection.execute(
            select(func.count()).where(tickets.c.escalated_at.is_not(None))
        ).scalar_one()
    return [
        *gauge_lines("citizenbot_tickets_created_total", "Tickets created, per channel",
                     "counter", (({"channel": c}, n) for c, n in created)),
        *gauge_lines("citizenbot_sla_breached_open_tickets",
                     "Open tickets past their SLA deadline", "gauge", [({}, breached)]),
        *gauge_lines("citizenbot_sla_escalations_total",
                     "Tickets escalated (督办) after an SLA breach", "counter", [({}, escalated)]),
    ]


_engines: dict[str, object] = {}


def _engine(url: str, create_engine):  # type: ignore[no-untyped-def]
    """One small pool per URL for scrapes (they are rare and must not hog connections)."""
    engine = _engines.get(url)
    if engine is None:
        options = {} if url.startswith("sqlite") else {"pool_size": 1, "max_overflow": 1,
                                                       "pool_pre_ping": True}
        engine = _engines[url] = create_engine(url, **options)
    return engine
