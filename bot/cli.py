"""``citizenbot``: the one command operators and developers use.

Subcommands live beside the code they drive (``bot/tickets/commands.py``,
``nlu/commands.py`` …) and are mounted here, so this file stays a table of
contents. Heavy imports (Rasa, TensorFlow) happen inside commands, never at
import time: ``citizenbot --help`` must answer instantly.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    help="citizenbot: 政务服务助手 / citizen service assistant on Rasa.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _mount() -> None:
    from bot import runner
    from bot.tickets.commands import register as _tickets

    _tickets(app)

    from bot.console.commands import register as _console

    _console(app)

    runner.register(app)

    from nlu.commands import register as _nlu

    _nlu(app)

    from bot.evaluate import register as _evaluate
    from nlu.commands import eval_app

    _evaluate(eval_app)

    from connectors.hotline.commands import register as _hotline

    _hotline(app)

    from bot.supervision_commands import register as _supervision

    _supervision(app)


def main() -> None:
    _mount()
    app()


if __name__ == "__main__":
    main()
