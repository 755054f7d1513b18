"""Prometheus metrics of one process, with ``prometheus_client``.

Each Rasa server exposes its own numbers on ``/webhooks/ops/metrics``
(:mod:`connectors.ops`); Prometheus sums them over the scrape targets. Figures
that live in the database (tickets created, SLA breaches) are read at scrape
time by :func:`ticket_samples`, so every action server's tickets count without
the action servers needing their own endpoint, and the counts survive restarts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

__all__ = [
    "CONTENT_TYPE",
    "MESSAGES",
    "MESSAGE_SECONDS",
    "NLU_SECONDS",
    "REGISTRY",
    "SERVICE_ERRORS",
    "WEBHOOK_ERRORS",
    "render",
    "store_up",
    "ticket_samples",
]

#: the text format Prometheus scrapes
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: seconds; NLU on two cores is a few ms, a whole turn with actions ~50–500 ms
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: this process's metrics (not the library's global registry, which would add
#: process/GC collectors Rasa's own code may register too)
REGISTRY = CollectorRegistry(auto_describe=True)

MESSAGES = Counter(
    "citizenbot_messages", "Citizen messages handled, per channel", ["channel"],
    registry=REGISTRY,
)
MESSAGE_SECONDS = Histogram(
    "citizenbot_message_seconds", "Time to handle one citizen message (NLU, dialogue, actions)",
    ["channel"], buckets=BUCKETS, registry=REGISTRY,
)
NLU_SECONDS = Histogram(
    "citizenbot_nlu_seconds", "NLU parse latency", buckets=BUCKETS, registry=REGISTRY
)
WEBHOOK_ERRORS = Counter(
    "citizenbot_webhook_errors",
    "Webhook requests answered with a 5xx status, per channel path",
    ["channel"], registry=REGISTRY,
)
SERVICE_ERRORS = Counter(
    "citizenbot_service_errors",
    "Messages answered with an apology because a backing service failed "
    "(action_server, lock_store, tracker_store)",
    ["cause"], registry=REGISTRY,
)


class _Families:
    """A collector for families computed once per scrape (nothing kept between scrapes)."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        yield from self._families


def render(registry: CollectorRegistry = REGISTRY, extra: Iterable[Metric] = ()) -> str:
    """The whole exposition: the process's metrics, then ``extra`` families."""
    text = generate_latest(registry).decode()
    families = list(extra)
    if families:
        scrape = CollectorRegistry(auto_describe=False)
        scrape.register(_Families(families))
        text += generate_latest(scrape).decode()
    return text


def store_up(up: bool) -> Metric:
    family = GaugeMetricFamily(
        "citizenbot_ticket_store_up", "Whether the ticket store answered this scrape"
    )
    family.add_metric([], 1 if up else 0)
    return family


def ticket_samples(database_url: str) -> list[Metric]:
    """Tickets created per channel and open tickets past their deadline, from the store.

    Read from the database, not counted in a process: any action server may
    create a ticket, and the count then survives restarts.
    """
    from datetime import datetime, timezone

    from sqlalchemy import create_engine

    from bot.tickets.queries import counts

    found = counts(_engine(database_url, create_engine), datetime.now(timezone.utc))
    per_channel = CounterMetricFamily(
        "citizenbot_tickets_created", "Tickets created, per channel", labels=["channel"]
    )
    for channel, count in found.created_per_channel.items():
        per_channel.add_metric([channel], count)
    late = GaugeMetricFamily(
        "citizenbot_sla_breached_open_tickets", "Open tickets past their SLA deadline"
    )
    late.add_metric([], found.breached_open)
    escalations = CounterMetricFamily(
        "citizenbot_sla_escalations", "Tickets escalated (督办) after an SLA breach"
    )
    escalations.add_metric([], found.escalated)
    return [per_channel, late, escalations]


_engines: dict[str, object] = {}


def _engine(url: str, create_engine):
    """One small pool per URL for scrapes (they are rare and must not hog connections)."""
    engine = _engines.get(url)
    if engine is None:
        options = {} if url.startswith("sqlite") else {"pool_size": 1, "max_overflow": 1,
                                                       "pool_pre_ping": True}
        engine = _engines[url] = create_engine(url, **options)
    return engine
