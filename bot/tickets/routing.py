"""The routing table: category → department and SLA class (operator data).

The department router (nlu/) predicts one of seven categories with a
confidence; this table, not code, says who handles each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bot.settings import ROOT

DEFAULT_PATH = ROOT / "data" / "routing" / "departments.yml"


@dataclass(frozen=True)
class Route:
    department: str
    sla_class: str | None = None


@dataclass(frozen=True)
class KeywordOverride:
    keywords: tuple[str, ...]
    route: Route


@dataclass(frozen=True)
class RoutingTable:
    categories: dict[str, Route]
    overrides: tuple[KeywordOverride, ...] = ()
    manual_queue: str = "manual"
    extra_departments: tuple[str, ...] = field(default_factory=tuple)
    #: kinds that never wait for a dispatcher (emergencies), and where they go
    kinds: dict[str, Route] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | str = DEFAULT_PATH) -> RoutingTable:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        categories = {
            str(name): Route(str(spec["department"]), spec.get("sla_class"))
            for name, spec in (data.get("categories") or {}).items()
        }
        overrides = tuple(
            KeywordOverride(
                tuple(str(k) for k in item["keywords"]),
                Route(str(item["department"]), item.get("sla_class")),
            )
            for item in data.get("keyword_overrides") or []
        )
        kinds = {
            str(name): Route(str(spec["department"]), spec.get("sla_class"))
            for name, spec in (data.get("kinds") or {}).items()
        }
        return cls(
            categories=categories,
            overrides=overrides,
            kinds=kinds,
            manual_queue=str(data.get("manual_queue", "manual")),
            extra_departments=tuple(str(d) for d in data.get("extra_departments") or []),
        )

    @property
    def departments(self) -> list[str]:
        """Every department a ticket may be dispatched to, in table order."""
        seen: dict[str, None] = {}
        for route in self.categories.values():
            seen[route.department] = None
        for override in self.overrides:
            seen[override.route.department] = None
        for route in self.kinds.values():
            seen[route.department] = None
        for name in self.extra_departments:
            seen[name] = None
        return list(seen)

    def override_for(self, text: str) -> Route | None:
        for override in self.overrides:
            if any(keyword in text for keyword in override.keywords):
                return override.route
        return None

    def route(
        self,
        category: str | None,
        confidence: float | None,
        text: str,
        threshold: float,
        kind: str | None = None,
    ) -> Route | None:
        """Where to send a new ticket automatically, or None for manual dispatch.

        A kind listed under ``kinds`` (an emergency) is never left for manual
        dispatch: a keyword override, else a confident category, else the kind's
        own department.
        """
        override = self.override_for(text)
        if override is not None:
            return override
        confident = category is not None and confidence is not None and confidence >= threshold
        if confident and category in self.categories:
            return self.categories[category]
        if kind is not None and kind in self.kinds:
            return self.kinds[kind]
        return None

    def category_of(self, department: str) -> str | None:
        for name, route in self.categories.items():
            if route.department == department:
                return name
        return None
