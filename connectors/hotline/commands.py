"""``citizenbot ingest FILE…``: hotline transcripts into tickets and resolved contacts.

The command is a thin shell over :func:`connectors.hotline.ingest.ingest_paths`:
a rich progress bar (on stderr, so ``--json`` output stays clean) fed by the
library's progress callback, then the summary. Exit code 1 only when no call at
all could be read; problems with single lines are listed, not fatal. Heavy
imports happen inside the command: ``citizenbot --help`` stays instant.
"""

from __future__ import annotations

import contextlib
import json
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from connectors.hotline.ingest import IngestSummary


#: resolved contacts listed after an import (all of them with --json); tickets: all
CONTACTS_LISTED = 50


class FormatChoice(str, Enum):
    auto = "auto"
    jsonl = "jsonl"
    text = "text"


class EncodingChoice(str, Enum):
    auto = "auto"
    utf8 = "utf-8"
    gb18030 = "gb18030"


def register(app: typer.Typer) -> None:
    @app.command("ingest")
    def ingest(
        files: Annotated[list[Path], typer.Argument(help="transcript files (JSON Lines or text)")],
        model: Annotated[
            Path | None,
            typer.Option("--model", help="Rasa model file (default: the current inputs' model)"),
        ] = None,
        format: Annotated[FormatChoice, typer.Option("--format")] = FormatChoice.auto,
        encoding: Annotated[EncodingChoice, typer.Option("--encoding")] = EncodingChoice.auto,
        as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
    ) -> None:
        """热线转写导入 / ingest hotline transcripts: each call becomes a ticket or a contact."""
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        from bot.logging import warnings_to
        from bot.settings import get_settings
        from connectors.hotline import messages
        from connectors.hotline.ingest import ModelUnavailable, count_calls, ingest_paths

        # libraries' deprecation warnings: to the log file, not the staff's terminal
        warnings_to(get_settings().var_dir / "log" / "citizenbot.log")
        err = Console(stderr=True)
        total = 0
        for path in files:
            with contextlib.suppress(OSError, ValueError):  # reported by the ingest itself
                total += count_calls(path, format=format.value, encoding=encoding.value)
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(messages.CALLS_UNIT),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=err, transient=as_json) as bar:
            task = bar.add_task(messages.PROGRESS, total=total or None)
            nlu = _LoadingNLU(model, lambda text: bar.update(task, description=text), err)

            def progress(calls: int, nbytes: int) -> None:
                bar.update(task, completed=calls, description=messages.PROGRESS)

            try:
                summary = ingest_paths(
                    files,
                    format=format.value,
                    encoding=encoding.value,
                    nlu=nlu,
                    progress=progress,
                )
            except ModelUnavailable as exc:
                err.print(f"[red]{exc}[/red]")
                raise typer.Exit(2) from exc
        if as_json:
            typer.echo(json.dumps(summary.as_dict(), ensure_ascii=False, indent=2))
        else:
            _print(summary)
        if summary.nothing_read:
            err.print(f"[red]{messages.NO_CALLS}[/red]")
            raise typer.Exit(1)


class _LoadingNLU:
    """The model, loaded on the first call that needs parsing (a re-import needs none),
    with the stage shown while it loads (~30 s: Rasa and TensorFlow start)."""

    def __init__(self, model: Path | None, show: Any, err: Any) -> None:
        self.model, self.show, self.err = model, show, err
        self._nlu: Any = None

    def submit(self, texts: Any) -> Any:
        if self._nlu is None:
            import time

            from connectors.hotline import messages
            from connectors.hotline.ingest import ModelUnavailable
            from connectors.hotline.nlu import NLUFailed, load_nlu

            self.show(messages.LOADING_MODEL)
            started = time.perf_counter()
            try:
                self._nlu = load_nlu(self.model)
            except (FileNotFoundError, NLUFailed) as exc:
                raise ModelUnavailable(messages.NO_MODEL.format(error=exc)) from exc
            self.err.print(messages.MODEL_LOADED.format(seconds=time.perf_counter() - started))
            self.show(messages.PROGRESS)
        return self._nlu.submit(texts)


def _print(summary: IngestSummary) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from connectors.hotline import messages

    console = Console()
    table = Table(show_header=False)
    for name, label in messages.SUMMARY_LABELS:
        value = getattr(summary, name)
        table.add_row(label, str(len(value) if isinstance(value, list) else value))
    table.add_row("calls/s", f"{summary.calls_per_second:.1f}")
    console.print(table)
    if summary.tickets:
        console.print(messages.TICKETS_HEADING.format(count=len(summary.tickets)))
        for t in summary.tickets:
            department = t.get("department") or messages.NOT_DISPATCHED
            console.print(
                f"  [bold]{t['number']}[/bold]  {escape(str(department))}  "
                f"[dim]{escape(str(t['call_id']))}[/dim]  {escape(str(t.get('summary') or ''))}",
                no_wrap=True,
                overflow="ellipsis",
            )
    if summary.contacts:
        console.print(messages.CONTACTS_HEADING.format(count=len(summary.contacts)))
        for c in summary.contacts[:CONTACTS_LISTED]:
            console.print(
                f"  [dim]{escape(str(c['call_id']))}[/dim]  {escape(str(c.get('summary') or ''))}",
                no_wrap=True,
                overflow="ellipsis",
            )
        if len(summary.contacts) > CONTACTS_LISTED:
            console.print(messages.MORE.format(count=len(summary.contacts) - CONTACTS_LISTED))
    for problem in summary.errors:
        console.print(f"[red]error[/red] {escape(str(problem))}")
    for problem in summary.warnings:
        console.print(f"[yellow]warning[/yellow] {escape(str(problem))}")
