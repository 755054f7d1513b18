"""``citizenbot classify`` and ``citizenbot eval routing``: the router outside Rasa.

Operators classify backlogs and hotline exports in bulk, and developers compare
the router with its linear baseline, without waiting 25 s for TensorFlow: both
commands use :mod:`nlu.routing` only, reading the router straight out of the
latest Rasa model archive.

``eval_app`` is the shared ``citizenbot eval`` group; other parts add their own
commands to it (``from bot.model.commands import eval_app``).
"""

from __future__ import annotations

import json
import sys
import tarfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Annotated, Any

import typer

from bot.model.router import load_router, router_module, split_rows

eval_app = typer.Typer(help="评测 / evaluate models against held-out data.", no_args_is_help=True)

_BATCH = 64

#: Names for the confusion-matrix picture when no CJK font is installed.
ENGLISH_LABELS = {
    "城乡建设": "Urban-rural construction",
    "劳动和社会保障": "Labour & social security",
    "教育文体": "Education, culture, sports",
    "商贸旅游": "Commerce & tourism",
    "环境保护": "Environment",
    "卫生计生": "Health & family planning",
    "交通运输": "Transport",
}


def register(app: typer.Typer) -> None:
    app.command("classify")(classify)
    app.add_typer(eval_app, name="eval")


# -- classify -------------------------------------------------------------------------------


class BadLine(ValueError):
    """A line that cannot be classified; carries its id when the line had one."""

    def __init__(self, message: str, ident: Any = None) -> None:
        super().__init__(message)
        self.ident = ident


def _parse_line(line: str) -> tuple[Any, str]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BadLine(f"not JSON ({exc.msg} at column {exc.colno})") from exc
    if not isinstance(row, dict):
        raise BadLine("expected a JSON object {\"id\", \"text\"}")
    text = row.get("text")
    if not isinstance(text, str):
        raise BadLine("field 'text' missing or not a string", row.get("id"))
    return row.get("id"), text


def _emit(out: IO[str], record: dict[str, Any]) -> None:
    out.write(json.dumps(record, ensure_ascii=False) + "\n")


def classify_stream(router: Any, lines: Iterator[str], out: IO[str], err: IO[str]) -> int:
    """Classify JSON lines in batches, keeping input order; returns the number of bad lines."""
    pending: list[tuple[int, Any, str | None, str | None]] = []  # (line, id, text, error)
    bad = 0

    def flush() -> None:
        texts = [text for _, _, text, error in pending if error is None]
        results = iter(router.predict(texts)) if texts else iter(())
        for number, ident, _, error in pending:
            if error is not None:
                _emit(out, {"id": ident, "line": number, "error": error})
                continue
            label, confidence = next(results)
            _emit(out, {"id": ident, "label": label, "confidence": round(confidence, 4)})
        out.flush()
        pending.clear()

    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            ident, text = _parse_line(line)
        except BadLine as exc:
            bad += 1
            print(f"line {number}: {exc}", file=err)
            pending.append((number, exc.ident, None, str(exc)))
        else:
            pending.append((number, ident, text, None))
        if len(pending) >= _BATCH:
            flush()
    flush()
    return bad


def classify(
    file: Annotated[
        str, typer.Argument(help="JSON lines {\"id\", \"text\"}; '-' reads stdin.")
    ] = "-",
    model: Annotated[
        Path | None,
        typer.Option("--model", help="a Router directory or a model .tar.gz "
                     "(default: latest in models/)"),
    ] = None,
    model_dir: Annotated[
        Path | None,
        typer.Option("--model-dir", help="where to look for the latest model (default: MODEL_DIR)"),
    ] = None,
) -> None:
    """分类 / route messages: one {"id", "label", "confidence"} JSON line per input line.

    A bad line gets {"id", "line", "error"} instead (and a message on stderr);
    the rest are still classified, and the exit status is 1.
    """
    try:
        router = load_router(model, model_dir)
    except (FileNotFoundError, ValueError, OSError, tarfile.TarError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from exc
    if file == "-":
        bad = classify_stream(router, iter(sys.stdin), sys.stdout, sys.stderr)
    else:
        try:
            handle = open(file, encoding="utf-8", errors="replace")  # noqa: SIM115
        except OSError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(2) from exc
        with handle:
            bad = classify_stream(router, iter(handle), sys.stdout, sys.stderr)
    if bad:
        print(f"{bad} line(s) could not be classified", file=sys.stderr)
        raise typer.Exit(1)


# -- eval routing ---------------------------------------------------------------------------


def _cjk_font() -> str | None:
    """A font family matplotlib can use for Chinese labels, if one is installed."""
    from matplotlib import font_manager

    hints = ("CJK", "WenQuanYi", "Noto Sans SC", "Source Han", "Droid Sans Fallback",
             "AR PL", "SimHei", "Microsoft YaHei", "PingFang", "Heiti")
    for font in font_manager.fontManager.ttflist:
        if any(h.lower() in font.name.lower() for h in hints):
            return font.name
    return None


def plot_confusions(
    results: dict[str, dict[str, Any]], labels: Sequence[str], path: Path
) -> str:
    """Write the confusion matrices side by side; returns the label style used."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    font = _cjk_font()
    if font:
        plt.rcParams["font.sans-serif"] = [font, *plt.rcParams["font.sans-serif"]]
        names = list(labels)
    else:
        names = [ENGLISH_LABELS.get(label, f"class {i}") for i, label in enumerate(labels)]
    fig, axes = plt.subplots(1, len(results), figsize=(7.5 * len(results), 7), squeeze=False)
    for ax, (title, result) in zip(axes[0], results.items(), strict=True):
        matrix = np.array(result["confusion_matrix"])
        ax.imshow(matrix, cmap="Blues")
        ax.set_title(f"{title}: macro-F1 {result['macro_f1']:.4f}")
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        top = matrix.max() or 1
        for i in range(matrix.shape[0]):
            for j in range(matrix.shape[1]):
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if matrix[i, j] > top / 2 else "black")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return "chinese" if font else "english (no CJK font: apt-get install fonts-noto-cjk)"


def evaluate(
    router: Any, texts: Sequence[str], labels: Sequence[str], classes: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class scores, confusion matrix and calibration of one model."""
    import numpy as np
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
    from sklearn.metrics import precision_recall_fscore_support as prfs

    start = time.perf_counter()
    predicted = router.predict(list(texts))
    elapsed = time.perf_counter() - start
    guesses = [label for label, _ in predicted]
    confidences = np.array([confidence for _, confidence in predicted])
    correct = np.array([g == t for g, t in zip(guesses, labels, strict=True)])
    precision, recall, f1, support = prfs(labels, guesses, labels=list(classes), zero_division=0)
    # Expected calibration error over 10 equal-width confidence bins.
    bins = np.minimum((confidences * 10).astype(int), 9)
    ece = sum(
        abs(correct[bins == b].mean() - confidences[bins == b].mean()) * (bins == b).mean()
        for b in range(10)
        if (bins == b).any()
    )
    return {
        "accuracy": float(accuracy_score(labels, guesses)),
        "macro_f1": float(f1_score(labels, guesses, labels=list(classes), average="macro",
                                  zero_division=0)),
        "per_class": {
            c: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for c, p, r, f, s in zip(classes, precision, recall, f1, support, strict=True)
        },
        "confusion_matrix": confusion_matrix(labels, guesses, labels=list(classes)).tolist(),
        "mean_confidence": float(confidences.mean()) if len(confidences) else 0.0,
        "expected_calibration_error": float(ece),
        "batch_ms_per_message": 1000 * elapsed / max(1, len(texts)),
    }


def format_result(name: str, result: dict[str, Any], classes: Sequence[str]) -> str:
    width = max(len(c) for c in classes) + 2
    lines = [
        f"== {name}: accuracy {result['accuracy']:.4f}  macro-F1 {result['macro_f1']:.4f}  "
        f"ECE {result['expected_calibration_error']:.4f}  train {result['train_seconds']:.1f}s",
        f"{'':{width}}  precision  recall     f1  support",
    ]
    for c in classes:
        s = result["per_class"][c]
        lines.append(f"{c:{width}}  {s['precision']:9.4f}  {s['recall']:6.4f} {s['f1']:6.4f}"
                     f"  {s['support']:7d}")
    lines.append("confusion matrix (rows = true, columns = predicted, in the order above):")
    lines.extend("  " + " ".join(f"{n:5d}" for n in row) for row in result["confusion_matrix"])
    return "\n".join(lines)


def _default_training_file() -> Path:
    from bot.settings import ROOT

    return ROOT / "data" / "routing" / "messages.jsonl"


@eval_app.command("routing")
def eval_routing(
    test: Annotated[
        Path | None,
        typer.Option("--test", help="labelled JSON lines to score on "
                     "(default: seeded 80/20 split of --train)"),
    ] = None,
    train: Annotated[
        Path | None,
        typer.Option("--train", help="labelled JSON lines to train on "
                     "(default: data/routing/messages.jsonl)"),
    ] = None,
    seed: Annotated[int, typer.Option(help="seed of the split and the models")] = 42,
    test_size: Annotated[
        float, typer.Option(help="held-out share when --test is not given")
    ] = 0.2,
    sample: Annotated[
        int,
        typer.Option(help="train on a seeded stratified sample of this many rows (0: all)"),
    ] = 0,
    out: Annotated[
        Path | None, typer.Option("--out", help="report directory (default: reports/routing)")
    ] = None,
) -> None:
    """路由评测 / train the router and the linear baseline on the same data and compare them."""
    routing = router_module()
    train_path = train or _default_training_file()
    try:
        rows = routing.read_jsonl(train_path)
        test_rows = routing.read_jsonl(test) if test else None
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from exc
    if test_rows is None:
        rows, test_rows = split_rows(rows, test_size, seed)
    if sample and sample < len(rows):
        rows, _ = split_rows(rows, 1 - sample / len(rows), seed)
    train_texts, train_labels = routing.texts_labels(rows)
    test_texts, test_labels = routing.texts_labels(test_rows)
    classes = sorted(set(train_labels) | set(test_labels))

    models = {
        "router": routing.Router(routing.RouterConfig(seed=seed)),
        "baseline": routing.Router(routing.baseline_config(seed=seed)),
    }
    results: dict[str, dict[str, Any]] = {}
    for name, model in models.items():
        start = time.perf_counter()
        model.fit(train_texts, train_labels)
        seconds = time.perf_counter() - start
        results[name] = evaluate(model, test_texts, test_labels, classes)
        results[name]["train_seconds"] = seconds
        print(format_result(name, results[name], classes), flush=True)

    out = out or _default_training_file().parents[2] / "reports" / "routing"
    out.mkdir(parents=True, exist_ok=True)
    png = out / "confusion.png"
    label_style = plot_confusions(results, classes, png)
    gain = results["router"]["macro_f1"] - results["baseline"]["macro_f1"]
    report = {
        "command": " ".join(["citizenbot", "eval", "routing", *sys.argv[3:]]),
        "train_file": str(train_path),
        "test_file": str(test) if test else None,
        "split": None if test else {"test_size": test_size, "seed": seed},
        "train_rows": len(rows),
        "test_rows": len(test_rows),
        "classes": classes,
        "config": {name: model.config.__dict__ for name, model in models.items()},
        "results": results,
        "macro_f1_gain": gain,
        "confusion_png": str(png),
        "png_labels": label_style,
    }
    (out / "eval.json").write_text(
        json.dumps(report, ensure_ascii=False, indent=2, default=list), encoding="utf-8"
    )
    print(f"router vs baseline: macro-F1 {results['router']['macro_f1']:.4f} vs "
          f"{results['baseline']['macro_f1']:.4f} ({gain:+.4f})")
    print(f"report: {out / 'eval.json'}  picture: {png} (labels: {label_style})")
