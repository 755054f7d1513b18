"""``citizenbot``: the one command operators and developers use.

Subcommands live beside the code they drive (``bot/tickets/commands.py``,
``bot/model/commands.py`` …) and are mounted here, so this file stays a table of
contents. Heavy imports (Rasa, TensorFlow) happen inside commands, never at
import time: ``citizenbot --help`` must answer instantly.
"""

from __future__ import annotations

import os

import typer

app = typer.Typer(
    help="citizenbot: 政务服务助手 / citizen service assistant on Rasa.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _mount() -> None:
    """Mount every command group, in the order ``--help`` lists them."""
    from bot import runner
    from bot.console.commands import register as users
    from bot.model.commands import eval_app
    from bot.model.commands import register as nlu
    from bot.model.evaluate import register as evaluate_conversations
    from bot.supervision.commands import register as supervision
    from bot.tickets.commands import register as tickets
    from connectors.hotline.commands import register as hotline
    from connectors.wechat.commands import register as wechat

    runner.register(app)  # run, train
    tickets(app)  # tickets, audit, db, keys, sla
    nlu(app)  # classify, eval routing
    evaluate_conversations(eval_app)  # eval conversations
    hotline(app)  # ingest
    users(app)  # users
    supervision(app)  # hotspots, warnings, export, open311
    wechat(app)  # wechat undelivered


def main() -> None:
    # Everything citizenbot writes (SQLite files, var/ secrets, logs, the process
    # table, exports) holds or leads to personal data: owner-only, whatever the
    # shell's umask. The children `citizenbot run` starts inherit it.
    os.umask(0o077)
    _mount()
    app()


if __name__ == "__main__":
    main()
