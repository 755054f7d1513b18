"""``citizenbot ingest FILE…``: hotline transcripts into tickets and resolved contacts.

The command is a thin shell over :func:`connectors.hotline.ingest.ingest_paths`:
a rich progress bar (on stderr, so ``--json`` output stays clean) fed by the
library's progress callback, then the summary. Exit code 1 only when no call at
all could be read; problems with single lines are listed, not fatal. Heavy
imports happen inside the command: ``citizenbot --help`` stays instant.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer


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
            DownloadColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        from connectors.hotline import messages
        from connectors.hotline.ingest import ModelUnavailable, ingest_paths

        err = Console(stderr=True)
        total = sum(p.stat().st_size for p in files if p.is_file()) or None
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[calls]}"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=err, transient=as_json) as bar:
            task = bar.add_task(messages.PROGRESS, total=total, calls="")

            def progress(calls: int, nbytes: int) -> None:
                bar.update(task, completed=nbytes, calls=messages.CALLS.format(calls=calls))

            try:
                summary = ingest_paths(
                    files,
                    format=format.value,
                    encoding=encoding.value,
                    model=model,
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


def _print(summary) -> None:  # type: ignore[no-untyped-def]
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
    for problem in summary.errors:
        console.print(f"[red]error[/red] {escape(str(problem))}")
    for problem in summary.warnings:
        console.print(f"[yellow]warning[/yellow] {escape(str(problem))}")
