"""``citizenbot eval conversations``: the dialogue and the NLU, measured the Rasa way.

Two of Rasa's own evaluations, run as ``rasa`` subprocesses so that the reports
are exactly what ``rasa test`` writes (and TensorFlow stays out of this process):

* ``rasa test core --e2e`` on the end-to-end test stories in
  ``tests/conversations/``: every user text goes through the real NLU and every
  action is predicted by the real policies; a story passes only when every
  intent, entity and action matches. Actions are not executed (no action
  server), so the stories carry the slots and loop events the actions would set.
* ``rasa test nlu --cross-validation`` on ``data/nlu``: intent macro-F1 and
  entity F1 on folds of our own data. It trains one model per fold, so it takes
  a while; ``--skip-nlu-cv`` leaves it out during development.

The summary goes to stdout; the exit status is 1 when a story fails or a figure
misses its threshold, 2 when a run could not be made at all.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.settings import ROOT

STORIES = ROOT / "tests" / "conversations"
NLU_DATA = ROOT / "data" / "nlu"
CONFIG = ROOT / "config.yml"
REPORTS = ROOT / "reports"
#: the issue's bar for the NLU on our own data
INTENT_MACRO_F1 = 0.95
ENTITY_F1 = 0.90
#: entity extractors whose reports count: DIET learns place/time/service/rating,
#: IdentifierExtractor finds phone, 身份证 and ticket numbers by rule
ENTITY_REPORTS = {
    "DIETClassifier": ("place", "time", "service", "rating"),
    "IdentifierExtractor": ("phone", "id_number", "ticket_number"),
}


def register(eval_app: typer.Typer) -> None:
    """Add ``conversations`` to the shared ``citizenbot eval`` group."""
    eval_app.command("conversations")(eval_conversations)


@dataclass(frozen=True)
class StoryResult:
    passed: int
    total: int

    @property
    def failed(self) -> int:
        return self.total - self.passed


@dataclass(frozen=True)
class NluResult:
    intent_macro_f1: float
    #: extractor → micro-averaged F1 over the entities it is responsible for
    entity_f1: dict[str, float]


def default_model() -> Path:
    """The model for the current inputs, else the newest one in ``models/`` (with a warning)."""
    from bot.model import model_path
    from nlu.commands import latest_archive

    current = model_path()
    if current.exists():
        return current
    latest = latest_archive(current.parent)
    print(
        f"warning: no model for the current inputs ({current.name}); using {latest.name}. "
        "Run `citizenbot train` to test what is in the tree.",
        file=sys.stderr,
    )
    return latest


def _rasa(args: list[str], log: Path) -> int:
    """Run ``rasa <args>`` from the project root, its output into ``log``."""
    rasa = Path(sys.executable).with_name("rasa")
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as handle:
        return subprocess.run(
            [str(rasa), *args], cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT
        ).returncode


def run_stories(model: Path, stories: Path, out: Path) -> StoryResult:
    """``rasa test core --e2e``; raises RuntimeError when Rasa could not run."""
    out.mkdir(parents=True, exist_ok=True)
    report = out / "story_report.json"
    report.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        # No action server, tracker or lock store: the stories are evaluated offline.
        endpoints = Path(tmp, "endpoints.yml")
        endpoints.write_text("{}\n")
        code = _rasa(
            [
                "test", "core", "--e2e", "--no-plot",
                "--model", str(model),
                "--stories", str(stories),
                "--endpoints", str(endpoints),
                "--out", str(out),
            ],
            out / "rasa.log",
        )
    if code != 0 or not report.exists():
        raise RuntimeError(f"rasa test core failed (exit {code}); see {out / 'rasa.log'}")
    return read_story_report(report)


def read_story_report(report: Path) -> StoryResult:
    data = json.loads(report.read_text(encoding="utf-8"))
    accuracy = data.get("conversation_accuracy") or {}
    return StoryResult(passed=int(accuracy.get("correct", 0)), total=int(accuracy.get("total", 0)))


def run_nlu_cross_validation(out: Path, folds: int) -> NluResult:
    """``rasa test nlu --cross-validation`` on data/nlu; raises RuntimeError when it fails."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "intent_report.json").unlink(missing_ok=True)
    code = _rasa(
        [
            "test", "nlu", "--nlu", str(NLU_DATA), "--cross-validation",
            "--folds", str(folds), "--config", str(CONFIG), "--out", str(out),
        ],
        out / "rasa.log",
    )
    if code != 0 or not (out / "intent_report.json").exists():
        raise RuntimeError(f"rasa test nlu failed (exit {code}); see {out / 'rasa.log'}")
    return read_nlu_reports(out)


def _micro_f1(report: dict[str, Any], labels: tuple[str, ...]) -> float | None:
    """Micro-averaged F1 over ``labels`` from a sklearn-style per-label report."""
    tp = fp = fn = 0.0
    seen = False
    for label in labels:
        row = report.get(label)
        if not row:
            continue
        seen = True
        support = float(row["support"])
        recall, precision = float(row["recall"]), float(row["precision"])
        hits = recall * support
        tp += hits
        fn += support - hits
        fp += hits / precision - hits if precision else 0.0
    if not seen or tp == 0:
        return 0.0 if seen else None
    return 2 * tp / (2 * tp + fp + fn)


def read_nlu_reports(out: Path) -> NluResult:
    intents = json.loads((out / "intent_report.json").read_text(encoding="utf-8"))
    entity_f1: dict[str, float] = {}
    for extractor, labels in ENTITY_REPORTS.items():
        path = out / f"{extractor}_report.json"
        if path.exists():
            value = _micro_f1(json.loads(path.read_text(encoding="utf-8")), labels)
            if value is not None:
                entity_f1[extractor] = value
    return NluResult(
        intent_macro_f1=float(intents["macro avg"]["f1-score"]), entity_f1=entity_f1
    )


def eval_conversations(
    model: Annotated[
        Path | None,
        typer.Option("--model", help="model .tar.gz (default: the one for the current inputs)"),
    ] = None,
    stories: Annotated[
        Path, typer.Option("--stories", help="end-to-end test stories (file or folder)")
    ] = STORIES,
    out: Annotated[
        Path, typer.Option("--out", help="reports go to <out>/conversations and <out>/nlu")
    ] = REPORTS,
    skip_nlu_cv: Annotated[
        bool, typer.Option("--skip-nlu-cv", help="only the stories (cross-validation is slow)")
    ] = False,
    folds: Annotated[int, typer.Option("--folds", min=2, help="cross-validation folds")] = 3,
) -> None:
    """对话评测 / run the end-to-end test stories and NLU cross-validation; fail below the bar."""
    ok = True
    try:
        result = run_stories(model or default_model(), stories, out / "conversations")
    except (RuntimeError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from exc
    print(f"stories: {result.passed}/{result.total} passed, {result.failed} failed "
          f"(report: {out / 'conversations'})")
    if result.failed or not result.total:
        ok = False
        print(f"  failed stories: {out / 'conversations' / 'failed_test_stories.yml'}")
    if not skip_nlu_cv:
        try:
            nlu = run_nlu_cross_validation(out / "nlu", folds)
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(2) from exc
        mark = "ok" if nlu.intent_macro_f1 >= INTENT_MACRO_F1 else "BELOW"
        print(f"intent macro-F1: {nlu.intent_macro_f1:.3f} ({mark}, bar {INTENT_MACRO_F1})")
        ok = ok and nlu.intent_macro_f1 >= INTENT_MACRO_F1
        for extractor, value in nlu.entity_f1.items():
            mark = "ok" if value >= ENTITY_F1 else "BELOW"
            print(f"entity F1 ({extractor}): {value:.3f} ({mark}, bar {ENTITY_F1})")
            ok = ok and value >= ENTITY_F1
        if not nlu.entity_f1:
            print("entity F1: no entity report written", file=sys.stderr)
            ok = False
    if not ok:
        raise typer.Exit(1)
