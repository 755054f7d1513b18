"""Early warning (预警): a category × district whose count today is far above normal.

The rule, stated once (``docs/supervision.md`` repeats it):

For each category c and district d, let x be the number of tickets created on
the local day D, and x₁ … x₂₈ the counts of the 28 days before D (days with no
ticket count as 0). The baseline is the exponentially weighted mean

    λ = Σ w_k x_k / Σ w_k,   w_k = (1 − α)^(k−1),   α = 2 / (28 + 1)

floored at ``FLOOR`` (0.1 per day: a quiet cell is not "zero forever"). D is a
**surge** when x ≥ ``MIN_COUNT`` (5) and the Poisson upper tail
P(X ≥ x | λ) < ``ALPHA`` (0.001). The minimum count keeps one-off pairs in a
quiet cell from alarming; the tail probability scales the bar with the cell's
normal volume (a busy district needs far more than 5 to stand out).

"Once per surge": a surge episode is a run of consecutive flagged days of one
cell. The first flagged day inserts one ``warnings`` row (that is the warning
sent: recorded and listed for supervisors in the console); a flagged day right
after the episode's ``last_day`` only extends it. The unique key
(category, district, first_day) keeps concurrent checks from sending twice.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from bot.supervision.stats import Fact
from bot.tickets.db import WRITE
from bot.tickets.schema import warnings as warnings_table

WINDOW = 28
ALPHA = 1e-3
MIN_COUNT = 5
FLOOR = 0.1
UTC = timezone.utc


@dataclass(frozen=True)
class Surge:
    category: str
    district: str
    day: date
    count: int
    baseline: float
    p_value: float

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["day"] = self.day.isoformat()
        data["baseline"] = round(self.baseline, 3)
        return data


@contextlib.contextmanager
def _writing(engine: Engine) -> Iterator[Connection]:
    """A write transaction (``BEGIN IMMEDIATE`` on SQLite, as the store's own writes)."""
    with engine.connect() as conn:
        conn = conn.execution_options(**{WRITE: True})
        with conn.begin():
            yield conn


def ewma_baseline(history: Sequence[int], window: int = WINDOW) -> float:
    """λ over ``history`` (newest first, at most ``window`` days), floored at FLOOR."""
    alpha = 2 / (window + 1)
    weights = [(1 - alpha) ** k for k in range(window)]
    values = list(history[:window]) + [0] * (window - len(history[:window]))
    level = sum(w * x for w, x in zip(weights, values, strict=True)) / sum(weights)
    return max(level, FLOOR)


def poisson_tail(count: int, mean: float) -> float:
    """P(X ≥ count) for X ~ Poisson(mean)."""
    from scipy.stats import poisson

    return float(poisson.sf(count - 1, mean))


def detect(
    facts: Sequence[Fact],
    day: date,
    *,
    window: int = WINDOW,
    alpha: float = ALPHA,
    min_count: int = MIN_COUNT,
) -> list[Surge]:
    """The surges of ``day`` (facts must cover ``day`` and the ``window`` days before)."""
    counts: dict[tuple[str, str], dict[date, int]] = defaultdict(lambda: defaultdict(int))
    for f in facts:
        counts[(f.category, f.district)][f.day] += 1
    surges = []
    for (category, district), per_day in counts.items():
        x = per_day.get(day, 0)
        if x < min_count:
            continue
        history = [per_day.get(day - timedelta(days=k), 0) for k in range(1, window + 1)]
        baseline = ewma_baseline(history, window)
        p = poisson_tail(x, baseline)
        if p < alpha:
            surges.append(Surge(category, district, day, x, baseline, p))
    surges.sort(key=lambda s: (s.p_value, -s.count))
    return surges


def record(engine: Engine, surges: Sequence[Surge], now: datetime) -> list[dict[str, Any]]:
    """Store the surges; return the warnings *newly* sent (first day of an episode)."""
    stamp = now.astimezone(UTC).replace(tzinfo=None)
    sent = []
    w = warnings_table.c
    for s in surges:
        today, yesterday = s.day.isoformat(), (s.day - timedelta(days=1)).isoformat()
        with _writing(engine) as conn:
            episode = conn.execute(
                select(warnings_table).where(
                    w.category == s.category,
                    w.district == s.district,
                    w.last_day.in_([today, yesterday]),
                    w.first_day <= today,
                )
            ).first()
            if episode is not None:
                conn.execute(
                    update(warnings_table)
                    .where(w.id == episode.id)
                    .values(
                        last_day=max(episode.last_day, today),
                        count=max(episode.count, s.count),
                        updated_at=stamp,
                    )
                )
                continue
        try:
            with _writing(engine) as conn:
                conn.execute(
                    insert(warnings_table).values(
                        category=s.category,
                        district=s.district,
                        first_day=today,
                        last_day=today,
                        count=s.count,
                        baseline=s.baseline,
                        p_value=s.p_value,
                        created_at=stamp,
                        updated_at=stamp,
                    )
                )
        except IntegrityError:
            continue  # another check sent it a moment ago
        sent.append(s.to_dict())
    return sent


def recorded(
    engine: Engine, limit: int = 100, unacknowledged: bool = False
) -> list[dict[str, Any]]:
    """The warnings sent, newest first (the supervisors' notification list)."""
    stmt = select(warnings_table).order_by(
        warnings_table.c.created_at.desc(), warnings_table.c.id.desc()
    )
    if unacknowledged:
        stmt = stmt.where(warnings_table.c.acknowledged_at.is_(None))
    with engine.connect() as conn:
        rows = conn.execute(stmt.limit(limit)).mappings().all()
    out = []
    for r in rows:
        item = dict(r)
        for key in ("created_at", "updated_at", "acknowledged_at"):
            if item[key] is not None:
                item[key] = item[key].replace(tzinfo=UTC).isoformat()
        out.append(item)
    return out


def acknowledge(engine: Engine, warning_id: int, who: str, now: datetime) -> bool:
    """Mark a warning as read by a supervisor; False when unknown or already read."""
    with _writing(engine) as conn:
        done = conn.execute(
            update(warnings_table)
            .where(warnings_table.c.id == warning_id, warnings_table.c.acknowledged_at.is_(None))
            .values(
                acknowledged_at=now.astimezone(UTC).replace(tzinfo=None), acknowledged_by=who[:64]
            )
        )
    return bool(done.rowcount)


def check(engine: Engine, tz: Any, now: datetime) -> dict[str, Any]:
    """Run the rule for the local day of ``now`` and record it: ``citizenbot warnings check``."""
    from bot.supervision.stats import load_facts

    day = now.astimezone(tz).date()
    start = datetime.combine(day - timedelta(days=WINDOW), datetime.min.time(), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    facts = load_facts(engine, tz, start, end)
    surges = detect(facts, day)
    sent = record(engine, surges, now)
    return {"day": day.isoformat(), "surges": [s.to_dict() for s in surges], "sent": sent}
