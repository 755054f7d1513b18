"""The house's floors (DESIGN.md, docs/architecture.md): no import runs from a floor up.

ground  nlu/                                          Chinese text, identifiers, components
middle  bot/settings, privacy, logging, metrics; bot/tickets/
upper   actions/, connectors/, bot/supervision/, bot/model/
roof    bot/cli.py, bot/runner.py, bot/console/, and every ``commands.py`` (the CLI's
        command groups, kept beside the code they drive and mounted by bot/cli.py)

A module may import its own floor and the floors below. Imports inside functions
count too: a lazy import up is still an import up.
"""

from __future__ import annotations

import ast
from pathlib import Path

from bot.settings import ROOT

PACKAGES = ("nlu", "bot", "actions", "connectors")
MIDDLE = ("bot.settings", "bot.privacy", "bot.logging", "bot.metrics", "bot.tickets")
UPPER = ("actions", "connectors", "bot.supervision", "bot.model")
ROOF = ("bot.cli", "bot.runner", "bot.console")
NAMES = {0: "ground", 1: "middle", 2: "upper", 3: "roof"}


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def floor(module: str) -> int | None:
    """The floor of one of our modules; None for anything else (and the bare ``bot``)."""
    if module.rsplit(".", 1)[-1] == "commands" or _within(module, ROOF):
        return 3
    if _within(module, ("nlu",)):
        return 0
    if _within(module, MIDDLE):
        return 1
    if _within(module, UPPER):
        return 2
    return None


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if any(part.startswith(".") or part == "node_modules" for part in path.parts):
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            # `from bot import privacy` imports bot.privacy
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_every_module_has_a_floor() -> None:
    homeless = [name for name in _modules() if name != "bot" and floor(name) is None]
    assert homeless == [], "give these a floor in DESIGN.md and here"


def test_no_import_runs_up_a_floor() -> None:
    upward = []
    for name, path in sorted(_modules().items()):
        own = floor(name)
        if own is None:
            continue
        for imported in sorted(_imports(path)):
            theirs = floor(imported)
            if theirs is not None and theirs > own:
                upward.append(f"{name} ({NAMES[own]}) imports {imported} ({NAMES[theirs]})")
    assert upward == []


def test_the_check_sees_an_import_up() -> None:
    """The rule itself: ground importing the ticket store would be caught."""
    assert floor("nlu.identifiers") == 0 and floor("bot.tickets.numbers") == 1
    assert floor("bot.tickets.commands") == 3 and floor("bot.console.live") == 3
    assert floor("connectors.wechat.api") == 2 and floor("bot.privacy") == 1


#: the tables of the ticket record: read and written only inside bot/tickets (the store,
#: its queries, live sessions); other tables in the same database belong to their users
TICKET_TABLES = frozenset({
    "tickets", "events", "counters", "duplicate_links", "routing_corrections",
    "resolved_contacts", "live_sessions", "live_messages",
})


def test_only_the_ticket_store_reads_the_ticket_tables() -> None:
    outside = []
    for name, path in sorted(_modules().items()):
        if name.startswith("bot.tickets"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "bot.tickets.schema":
                outside += [f"{name}: {a.name}" for a in node.names if a.name in TICKET_TABLES]
    assert outside == [], "read through TicketStore.find / bot.tickets.queries"
