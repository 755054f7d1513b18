"""``citizenbot tickets|audit|db|keys|sla`` — operator commands of the ticket store.

Imports of the store happen inside the commands so that ``citizenbot --help``
stays instant.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from bot.tickets.store import TicketStore


def _store(upgrade: bool = True) -> TicketStore:
    from bot.tickets.store import TicketStore

    return TicketStore(upgrade=upgrade)


def _fail(message: str, code: int = 1) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    tickets = typer.Typer(
        help="工单 / tickets: list, show, purge personal data", no_args_is_help=True
    )
    audit = typer.Typer(help="审计 / audit trail", no_args_is_help=True)
    database = typer.Typer(help="数据库 / ticket database schema", no_args_is_help=True)
    keys = typer.Typer(help="密钥 / encryption keys of personal data", no_args_is_help=True)
    sla = typer.Typer(help="时限 / SLA clocks", no_args_is_help=True)

    @tickets.command("list")
    def list_(
        as_json: bool = typer.Option(False, "--json", help="JSON array instead of a table"),
        status: str | None = typer.Option(None, help="received, dispatched, in_progress, …"),
        department: str | None = typer.Option(None),
        channel: str | None = typer.Option(None),
        query: str | None = typer.Option(None, "--query", "-q", help="text or ticket number"),
        limit: int | None = typer.Option(None),
    ) -> None:
        """List tickets, newest first (personal data masked)."""
        from bot.tickets.errors import TicketError

        try:
            views = _store().list(
                status=status, department=department, channel=channel, query=query, limit=limit
            )
        except (TicketError, ValueError) as exc:
            _fail(str(exc))
            return
        if as_json:
            typer.echo(json.dumps([v.public_dict() for v in views], ensure_ascii=False, indent=2))
            return
        from rich.console import Console
        from rich.table import Table

        table = Table()
        table.add_column("number", no_wrap=True)
        for name in ("status", "kind", "channel", "department", "deadline", "summary"):
            table.add_column(name)
        for v in views:
            table.add_row(
                v.number,
                v.status.value,
                v.kind,
                v.channel,
                v.department or "-",
                v.deadline.strftime("%Y-%m-%d %H:%M"),
                v.summary[:40],
            )
        Console().print(table)

    @tickets.command("show")
    def show(
        number: str,
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """One ticket with its audit history (personal data masked)."""
        from bot.tickets.errors import TicketError

        store = _store()
        try:
            view = store.get(number)
            history = store.history(number)
        except TicketError as exc:
            _fail(str(exc))
            return
        data = view.public_dict()
        data["transcript"] = list(view.transcript)
        data["history"] = history
        if as_json:
            typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
            return
        from rich.console import Console
        from rich.table import Table

        console = Console()
        info = Table(show_header=False)
        for key in (
            "number",
            "status",
            "kind",
            "channel",
            "source",
            "category",
            "department",
            "sla_class",
            "deadline",
            "created_at",
            "place",
            "phone",
            "name",
            "summary",
            "description",
            "reply",
            "rating",
            "duplicate_of",
        ):
            info.add_row(key, "" if data.get(key) is None else str(data[key]))
        console.print(info)
        trail = Table("#", "at", "action", "actor", "from", "to", "reason")
        for event in history:
            actor = f"{event['actor_role']}:{event['actor_name']}"
            trail.add_row(
                str(event["seq"]),
                event["at"][:19],
                event["action"],
                actor,
                event["from_status"] or "",
                event["to_status"] or "",
                event["reason"],
            )
        console.print(trail)

    @tickets.command("purge")
    def purge(
        days: int | None = typer.Option(
            None, help="retention in days (default: TICKET_RETENTION_DAYS)"
        ),
    ) -> None:
        """Remove personal data of tickets closed longer than the retention period.

        The place is replaced by its district (``data/districts.yml``), so the
        statistics of old periods keep their districts and lose the address.
        """
        from bot.supervision.districts import district_table

        numbers = _store().purge(days=days, place_label=district_table().find)
        typer.echo(f"purged personal data of {len(numbers)} ticket(s)")
        for number in numbers:
            typer.echo(f"  {number}")

    @tickets.command("duplicates")
    def duplicates() -> None:
        """Probable duplicates waiting for a dispatcher."""
        typer.echo(json.dumps(_store().probable_duplicates(), ensure_ascii=False, indent=2))

    @tickets.command("corrections")
    def corrections() -> None:
        """Routing corrections by dispatchers (JSON lines, for retraining the router)."""
        for item in _store().routing_corrections():
            typer.echo(json.dumps(item, ensure_ascii=False))

    @audit.command("verify")
    def verify() -> None:
        """Recompute every ticket's hash chain; exit 1 naming the first broken event."""
        problems = _store().verify_audit()
        if problems:
            for problem in problems:
                typer.echo(f"BROKEN {problem}", err=True)
            raise typer.Exit(1)
        typer.echo("audit chains intact")

    @database.command("upgrade")
    def upgrade(revision: str = typer.Argument("head")) -> None:
        """Apply Alembic migrations to the ticket database."""
        from bot.settings import get_settings
        from bot.tickets import db

        engine = db.make_engine(get_settings().database_url)
        try:
            current = db.upgrade(engine, revision)
        finally:
            engine.dispose()
        typer.echo(f"ticket database at revision {current}")

    @keys.command("rotate")
    def rotate() -> None:
        """Re-encrypt all personal data with the newest PII key (the first in PII_KEY)."""
        count = _store().rotate_keys()
        typer.echo(f"re-encrypted personal data of {count} ticket(s) with the newest key")

    @sla.command("check")
    def check(
        within_hours: float = typer.Option(24, help="also list tickets due within this many hours"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """督办 every ticket past its deadline (once) and list tickets near it."""
        store = _store()
        escalated = store.escalate_overdue()
        due = store.due(within_hours=within_hours)
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "escalated": [v.public_dict() for v in escalated],
                        "due": [v.public_dict() for v in due],
                    },
                    ensure_ascii=False,
                    indent=2,
                )
            )
            return
        typer.echo(f"escalated {len(escalated)} overdue ticket(s)")
        for v in escalated:
            typer.echo(
                f"  督办 {v.number} {v.department or '-'} deadline {v.deadline:%Y-%m-%d %H:%M}"
            )
        typer.echo(f"{len(due)} ticket(s) due within {within_hours:g} h or overdue")
        for v in due:
            typer.echo(
                f"  {v.number} {v.status.value} {v.department or '-'} {v.deadline:%Y-%m-%d %H:%M}"
            )
        sys.stdout.flush()

    app.add_typer(tickets, name="tickets")
    app.add_typer(audit, name="audit")
    app.add_typer(database, name="db")
    app.add_typer(keys, name="keys")
    app.add_typer(sla, name="sla")
