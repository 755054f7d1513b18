"""``citizenbot hotspots | warnings | export open-data | open311`` — supervision commands.

Mounted by ``bot/cli.py``; imports happen inside the commands so that
``citizenbot --help`` stays instant.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from bot.tickets.store import TicketStore


def _store() -> TicketStore:
    from bot.tickets.store import TicketStore

    return TicketStore()


def _fail(message: str, code: int = 1) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(code)


def _day(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        _fail(f"{name}: expected YYYY-MM-DD, got {value!r}", 2)
        raise  # unreachable


def register(app: typer.Typer) -> None:
    warnings_app = typer.Typer(help="预警 / surge early warning", no_args_is_help=True)
    export_app = typer.Typer(help="导出 / exports", no_args_is_help=True)
    open311_app = typer.Typer(help="Open311 GeoReport v2 API", no_args_is_help=True)
    key_app = typer.Typer(help="API keys of Open311 clients", no_args_is_help=True)
    open311_app.add_typer(key_app, name="key")

    @app.command("hotspots")
    def hotspots(
        csv_file: Annotated[
            Path | None,
            typer.Option("--csv", help="message-board CSV (id,subject,body,time,likes)"),
        ] = None,
        top: int = typer.Option(20, "--top", help="how many hot spots"),
        threshold: float | None = typer.Option(None, help="cosine similarity to join a cluster"),
        half_life: float = typer.Option(7.0, "--half-life", help="recency half-life, days"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """热点 / Group similar open complaints by place and text; hottest first."""
        from bot.supervision.hotspots import (
            DEFAULT_THRESHOLD,
            docs_from_csv,
            find_hotspots,
            hotspots_json,
        )

        if csv_file is not None:
            if not csv_file.exists():
                _fail(f"{csv_file}: no such file", 2)
            docs = docs_from_csv(csv_file)
            now = None
        else:
            from bot.supervision.tickets import open_complaints

            store = _store()
            now = store.clock()
            docs = open_complaints(store.engine)
        spots = find_hotspots(
            docs,
            now=now,
            threshold=threshold or DEFAULT_THRESHOLD,
            half_life_days=half_life,
            top=top,
        )
        if as_json:
            typer.echo(hotspots_json(spots))
            return
        typer.echo(f"{len(docs)} texts, {len(spots)} hot spots shown")
        for rank, s in enumerate(spots, 1):
            typer.echo(
                f"{rank:>3}. heat {s.heat:7.2f}  n={s.count:<3} likes={s.likes:<5} {s.label}"
            )
            for example in s.examples[:2]:
                typer.echo(f"       · {example}")

    @warnings_app.command("check")
    def warnings_check(
        now: str | None = typer.Option(None, help="ISO time to check (default: now)"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Run the surge rule for today; record (= send) each new surge once."""
        from bot.supervision import surge

        store = _store()
        moment = datetime.fromisoformat(now) if now else store.clock()
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=store.tz)
        result = surge.check(store.engine, store.tz, moment)
        if as_json:
            typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
            return
        typer.echo(f"{result['day']}: {len(result['surges'])} surges, {len(result['sent'])} new")
        for s in result["surges"]:
            typer.echo(
                f"  {s['category']} × {s['district']}: {s['count']} today, "
                f"baseline {s['baseline']}/day, p={s['p_value']:.2e}"
            )

    @warnings_app.command("list")
    def warnings_list(limit: int = typer.Option(50)) -> None:
        """Warnings sent, newest first (JSON lines)."""
        from bot.supervision import surge

        for item in surge.recorded(_store().engine, limit=limit):
            typer.echo(json.dumps(item, ensure_ascii=False))

    @export_app.command("open-data")
    def export_open_data(
        since: str = typer.Option(..., help="first day, YYYY-MM-DD"),
        until: str | None = typer.Option(
            None, help="last day, YYYY-MM-DD (default and latest: the day before yesterday, "
            "the last whole day that ended at least one day ago)"
        ),
        fmt: str = typer.Option("csv", "--format", help="csv or json"),
        period: str = typer.Option("day", help="day, week, month or all"),
        output: Annotated[
            Path | None, typer.Option("--output", "-o", help="file (default: stdout)")
        ] = None,
    ) -> None:
        """开放数据 / Counts by category, district, channel, status; small cells suppressed."""
        from bot.supervision import opendata
        from bot.supervision.stats import load_facts

        if fmt not in ("csv", "json"):
            _fail("--format must be csv or json", 2)
        if period not in opendata.PERIODS:
            _fail(f"--period must be one of {', '.join(opendata.PERIODS)}", 2)
        store = _store()
        now = store.clock()
        first = _day(since, "--since")
        last = _day(until, "--until") if until else opendata.latest_until(now, store.tz)
        try:
            text = opendata.export(
                lambda a, b: load_facts(store.engine, store.tz, a, b),
                store.tz,
                since=first,
                until=last,
                categories=frozenset(store.routing.categories),
                period=period,
                fmt=fmt,
                now=now,
            )
        except ValueError as exc:
            _fail(str(exc), 2)
            return
        if output:
            output.write_text(text, encoding="utf-8")
        else:
            typer.echo(text, nl=False)

    @key_app.command("add")
    def key_add(label: str) -> None:
        """Issue a key for a client (shown once)."""
        from bot.supervision import apikeys

        try:
            typer.echo(apikeys.issue(_store().engine, label))
        except ValueError as exc:
            _fail(str(exc))

    @key_app.command("revoke")
    def key_revoke(label: str) -> None:
        from bot.supervision import apikeys

        if not apikeys.revoke(_store().engine, label):
            _fail(f"no key labelled {label!r}")

    @key_app.command("list")
    def key_list() -> None:
        from bot.supervision import apikeys

        for item in apikeys.listing(_store().engine):
            typer.echo(json.dumps(item, ensure_ascii=False))

    app.add_typer(warnings_app, name="warnings")
    app.add_typer(export_app, name="export")
    app.add_typer(open311_app, name="open311")
