"""``citizenbot wechat undelivered``: the bot messages WeChat refused, for staff to follow up.

WeChat refuses a customer-service message after the citizen's 48-hour window
(45015) or over quota (45047); the channel keeps it in the ticket database.
Listed masked (phone, 身份证 and the OpenID's tail hidden), because this is a
terminal and its scrollback; ``--delete`` removes what was handled.
"""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    wechat = typer.Typer(help="WeChat channel: messages WeChat refused to deliver.",
                         no_args_is_help=True)
    app.add_typer(wechat, name="wechat")

    @wechat.command("undelivered")
    def undelivered(
        delete: Annotated[
            list[int] | None,
            typer.Option("--delete", help="delete these ids once handled (repeatable)"),
        ] = None,
    ) -> None:
        """List undelivered messages (masked), or delete handled ones."""
        from rich.console import Console
        from rich.table import Table

        from bot.privacy import mask_text
        from bot.settings import get_settings
        from bot.tickets.crypto import PiiCipher
        from connectors.wechat.api import UndeliveredStore, mask_openid

        settings = get_settings()
        store = UndeliveredStore(settings.database_url, PiiCipher(settings.effective_pii_keys))
        console = Console()
        try:
            if delete:
                console.print(f"deleted {store.delete(delete)} of {len(delete)}")
                return
            kept = store.all()
            if not kept:
                console.print("nothing undelivered / 没有未送达的消息")
                return
            table = Table("id", "at (UTC)", "openid", "errcode", "text")
            for item in kept:
                table.add_row(str(item.id), f"{item.created_at:%Y-%m-%d %H:%M}",
                              mask_openid(item.openid), str(item.errcode or ""),
                              mask_text(item.text)[:60])
            console.print(table)
        finally:
            store.dispose()
