"""``citizenbot users add|list|disable|enable|reset-password|token|revoke-tokens``.

Operators manage console accounts from the shell as well as from the admin
page; passwords and tokens are printed once and stored only as hashes.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from bot.console.accounts import Accounts


def _accounts() -> Accounts:
    from bot.console.accounts import Accounts
    from bot.tickets.store import TicketStore

    store = TicketStore()
    return Accounts(store.engine, store.departments())


def _fail(message: str) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    users = typer.Typer(
        help="控制台账号 / staff console users and API tokens", no_args_is_help=True
    )

    @users.command("add")
    def add(
        username: str,
        role: str = typer.Option(..., help="admin, dispatcher, department or supervisor"),
        department: str | None = typer.Option(None, help="the department (role department)"),
    ) -> None:
        """Create a user; prints a one-time password that must be changed at first login."""
        from bot.console.accounts import AccountError

        try:
            user, password = _accounts().add(username, role, department)
        except AccountError as exc:
            _fail(f"{exc.code}: {exc}")
            return
        typer.echo(
            f"{user.username} ({user.role}{'@' + user.department if user.department else ''})"
        )
        typer.echo(f"one-time password / 一次性密码: {password}")

    @users.command("list")
    def list_(as_json: bool = typer.Option(False, "--json")) -> None:
        """List users (never passwords)."""
        rows = [u.public_dict() for u in _accounts().list()]
        if as_json:
            typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
            return
        for row in rows:
            flags = " disabled" if row["disabled"] else ""
            typer.echo(f"{row['username']}\t{row['role']}\t{row['department'] or '-'}{flags}")

    @users.command("disable")
    def disable(username: str) -> None:
        """Disable a user: ends their sessions and revokes their API tokens."""
        from bot.console.accounts import AccountError

        try:
            _accounts().set_disabled(username, True)
        except AccountError as exc:
            _fail(f"{exc.code}: {exc}")
        typer.echo(f"disabled: {username}")

    @users.command("enable")
    def enable(username: str) -> None:
        """Enable a disabled user again (tokens stay revoked)."""
        from bot.console.accounts import AccountError

        try:
            _accounts().set_disabled(username, False)
        except AccountError as exc:
            _fail(f"{exc.code}: {exc}")
        typer.echo(f"enabled: {username}")

    @users.command("reset-password")
    def reset_password(username: str) -> None:
        """A new one-time password; ends the user's sessions."""
        from bot.console.accounts import AccountError

        try:
            password = _accounts().reset_password(username)
        except AccountError as exc:
            _fail(f"{exc.code}: {exc}")
            return
        typer.echo(f"one-time password / 一次性密码: {password}")

    @users.command("token")
    def token(
        username: str, label: str = typer.Option("api", help="what the token is for")
    ) -> None:
        """Create an API token for USERNAME (``Authorization: Bearer <token>``); shown once."""
        from bot.console.accounts import AccountError

        try:
            value = _accounts().create_token(username, label)
        except AccountError as exc:
            _fail(f"{exc.code}: {exc}")
            return
        typer.echo(value)

    @users.command("revoke-tokens")
    def revoke_tokens(username: str) -> None:
        """Revoke every API token of USERNAME."""
        from bot.console.accounts import AccountError

        try:
            count = _accounts().revoke_tokens(username)
        except AccountError as exc:
            _fail(f"{exc.code}: {exc}")
            return
        typer.echo(f"revoked {count}")

    app.add_typer(users, name="users")
