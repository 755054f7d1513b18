"""``citizenbot classify`` and ``citizenbot eval routing`` end to end, as subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CITIZENBOT = ROOT / ".venv" / "bin" / "citizenbot"
COMMAND = [str(CITIZENBOT)] if CITIZENBOT.exists() else [sys.executable, "-m", "bot.cli"]


def _run(args: list[str], stdin: str = "", timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.run(
        [*COMMAND, *args], input=stdin, capture_output=True, text=True, timeout=timeout,
        cwd=ROOT, env=env,
    )


def _lines(*rows: object) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n"
                   for r in rows)


def test_classify_stdin_with_bad_and_odd_lines(router_dir: Path) -> None:
    stdin = _lines(
        {"id": "a", "text": "A市某公司拖欠农民工工资三个月。老板一直不发工资，社保也没有交。"},
        "{not json",
        {"id": "b", "text": "我"},
        {"id": "c", "text": "路" * 20_000},
        {"id": "d"},
        {"id": "e", "text": "。，！？"},
        {"id": 6, "text": "The street light outside my house is broken"},
        "[1, 2]",
    )
    result = _run(["classify", "--model", str(router_dir), "-"], stdin)
    assert result.returncode == 1, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o.get("id") for o in out] == ["a", None, "b", "c", "d", "e", 6, None]
    assert out[0]["label"] == "劳动和社会保障"
    errors = {o["line"]: o["error"] for o in out if "error" in o}
    assert set(errors) == {2, 5, 8}
    for line in ("line 2:", "line 5:", "line 8:"):
        assert line in result.stderr
    for o in out:
        if "error" not in o:
            assert 0.0 <= o["confidence"] <= 1.0
    assert all(o["confidence"] < 0.5 for o in out[2:7] if "error" not in o)


def test_classify_reads_the_router_out_of_the_latest_model_archive(
    router_dir: Path, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    # The layout of a Rasa archive: components/<node name>/<resource files>.
    with tarfile.open(models / "20260101-000000-test.tar.gz", "w:gz") as tar:
        tar.add(router_dir, arcname="components/train_DepartmentRouter5/router")
    source = tmp_path / "in.jsonl"
    source.write_text(_lines({"id": 1, "text": "A3区某学校乱收补课费。每人收费800元。"}),
                      encoding="utf-8")
    result = _run(["classify", "--model-dir", str(models), str(source)])
    assert result.returncode == 0, result.stderr
    [row] = [json.loads(line) for line in result.stdout.splitlines()]
    assert row["id"] == 1 and row["label"] == "教育文体"


def test_classify_without_a_model_says_so(tmp_path: Path) -> None:
    result = _run(["classify", "--model-dir", str(tmp_path), "-"], "")
    assert result.returncode == 2
    assert "no trained model" in result.stderr


def test_eval_routing_writes_metrics_and_picture(sample_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = _run(["eval", "routing", "--train", str(sample_file), "--seed", "3",
                   "--out", str(out)])
    assert result.returncode == 0, result.stderr
    assert "macro-F1" in result.stdout and "confusion matrix" in result.stdout
    report = json.loads((out / "eval.json").read_text(encoding="utf-8"))
    assert report["train_rows"] + report["test_rows"] == 350
    for name in ("router", "baseline"):
        metrics = report["results"][name]
        assert 0.0 <= metrics["accuracy"] <= 1.0
        assert 0.0 <= metrics["macro_f1"] <= 1.0
        assert set(metrics["per_class"]) == set(report["classes"])
        assert sum(map(sum, metrics["confusion_matrix"])) == report["test_rows"]
    png = out / "confusion.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
