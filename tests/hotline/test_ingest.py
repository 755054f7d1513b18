"""Ingesting transcripts with the real model into the real SQLite ticket store."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bot.tickets.schema import resolved_contacts, tickets
from bot.tickets.store import TicketStore
from connectors.hotline import IngestSummary, ingest_file, ingest_paths
from tests.hotline.conftest import CITIZENBOT, ROOT, call, valid_id_number, write_jsonl, write_text

PHONE = "13812345678"
ID_NUMBER = valid_id_number()
INJECTION = "<script>alert('x')</script>'); DROP TABLE tickets; --"

COMPLAINT = call(
    "C-COMPLAINT",
    ("agent", "您好，12345热线，请讲。"),
    ("citizen", "你好，我要投诉阳光花园小区门口的烧烤摊，每天晚上十点以后还在营业，油烟特别大。"),
    ("agent", "请问您怎么称呼，身份证号是多少？"),
    ("citizen", f"我身份证号是{ID_NUMBER}，你们一定要管管。"),
    ("agent", "好的，我们会转交相关部门处理。"),
    ("citizen", "谢谢"),
    caller=PHONE,
    agent="王芳",
)
INQUIRY = call(
    "C-INQUIRY",
    ("agent", "您好，12345热线。"),
    ("citizen", "请问居住证怎么办理？"),
    ("agent", "您带身份证和租房合同到派出所办理就可以。"),
    ("citizen", "好的，谢谢"),
)
TEXT_CALLS = (
    "# T-REPORT 2026-11-27T10:00:00+08:00 13900001111\n"
    "坐席：您好，12345热线。\n"
    "市民：我要举报，人民路有家黑作坊无证经营，还往河里偷排污水。\n"
    "坐席：好的，已经帮您记录下来。\n"
    "\n"
    "# T-SUGGEST 2026-11-27 10:05:00\n"
    "来电人:我有个建议，建议在人民路增设一个公交站。\n"
    "客服：感谢您的建议，我们会转给相关部门。\n"
)


def count(store: TicketStore, table: Any) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def by_source(store: TicketStore) -> dict[str, Any]:
    return {v.source: v for v in store.list()}


def test_both_formats_and_encodings_become_tickets_and_contacts(
    tmp_path: Path, store: TicketStore, nlu: Any
) -> None:
    jsonl = write_jsonl(tmp_path / "calls.jsonl", [COMPLAINT, INQUIRY], bom=True)
    text = write_text(tmp_path / "calls.txt", TEXT_CALLS, "gb18030")
    seen: list[tuple[int, int]] = []
    summary = ingest_paths(
        [jsonl, text], store=store, nlu=nlu, progress=lambda c, b: seen.append((c, b))
    )
    assert isinstance(summary, IngestSummary)
    assert summary.errors == [] and summary.warnings == []
    assert summary.calls_read == 4
    assert summary.tickets_created == 3 and summary.resolved_contacts == 1
    assert seen[-1] == (4, jsonl.stat().st_size + text.stat().st_size)
    assert summary.bytes_read == seen[-1][1]
    assert json.loads(json.dumps(summary.as_dict()))["tickets_created"] == 3

    views = by_source(store)
    assert set(views) == {"C-COMPLAINT", "T-REPORT", "T-SUGGEST"}
    complaint = views["C-COMPLAINT"]
    assert complaint.kind == "complaint" and complaint.channel == "hotline"
    assert "烧烤" in complaint.summary and len(complaint.summary) <= 120
    # (the character CRF misses "幸福小区" here, 幸福 reads as a common word: known, see
    # the closing note of issue 21; this test is about ingesting, not about that name)
    assert complaint.place and "阳光花园小区" in complaint.place
    assert complaint.masked_phone == "138****5678"
    assert complaint.masked_id_number == ID_NUMBER[:6] + "********" + ID_NUMBER[-4:]
    assert complaint.category  # the department router labelled it
    assert complaint.facts["call_id"] == "C-COMPLAINT" and complaint.facts["agent"] == "王芳"
    speakers = [t["speaker"] for t in complaint.transcript]
    assert speakers == ["agent", "citizen", "agent", "citizen", "agent", "citizen"]
    assert all(t["time"].startswith("2026-11-27T09:15") for t in complaint.transcript)
    assert views["T-REPORT"].kind == "report"
    assert views["T-SUGGEST"].kind == "suggestion"
    assert views["T-REPORT"].masked_phone == "139****1111"

    (contact,) = store.resolved()
    assert contact["source"] == "C-INQUIRY" and contact["kind"] == "inquiry"
    assert contact["channel"] == "hotline" and "居住证" in contact["summary"]


def test_reingest_changes_nothing_and_needs_no_model(
    tmp_path: Path, store: TicketStore, nlu: Any
) -> None:
    path = write_jsonl(tmp_path / "calls.jsonl", [COMPLAINT, INQUIRY, COMPLAINT])
    first = ingest_file(path, store=store, nlu=nlu)
    assert (first.tickets_created, first.resolved_contacts, first.duplicates_skipped) == (1, 1, 1)
    before = [v.public_dict() for v in store.list()], store.resolved()

    class NoParsing:
        def submit(self, texts: Any) -> Any:
            raise AssertionError("known calls must not be parsed again")

    again = ingest_file(path, store=store, nlu=NoParsing())
    assert again.calls_read == 3
    assert (again.tickets_created, again.resolved_contacts, again.duplicates_skipped) == (0, 0, 3)
    assert ([v.public_dict() for v in store.list()], store.resolved()) == before
    assert count(store, tickets) == 1 and count(store, resolved_contacts) == 1


def test_bad_input_is_reported_and_the_rest_ingested(
    tmp_path: Path, store: TicketStore, nlu: Any
) -> None:
    rows: list = [
        call("BAD-1", ("agent", "您好？喂？请讲。")),  # no citizen turns
        '{"call_id": "BAD-2", "turns": [',  # broken JSON
        call("", ("citizen", "我要投诉")),  # missing call id
        call("HUGE", ("citizen", "我要投诉，" + "楼上漏水" * 30_000)),
        call("INJECT", ("citizen", f"我要投诉 {INJECTION}"), ("agent", "<b>好的</b>")),
        COMPLAINT,
    ]
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    summary = ingest_file(path, "bad.jsonl", store=store, nlu=nlu)
    assert summary.calls_read == 4  # BAD-1, HUGE, INJECT, C-COMPLAINT
    assert [(p.line, p.call_id) for p in summary.errors] == [(2, None), (3, None), (1, "BAD-1")]
    assert all(p.file == "bad.jsonl" for p in summary.errors)
    assert [(p.line, p.call_id) for p in summary.warnings] == [(4, "HUGE")]
    assert summary.tickets_created == 3

    views = by_source(store)
    huge = views["HUGE"]
    assert huge.facts["truncated"] is True and len(huge.summary) <= 120
    inject = views["INJECT"]
    assert INJECTION in inject.description  # stored verbatim, as data
    assert inject.transcript[1]["text"] == "<b>好的</b>"
    assert count(store, tickets) == 3  # the table survived


def test_nothing_readable(tmp_path: Path, store: TicketStore) -> None:
    summary = ingest_paths([tmp_path / "missing.jsonl"], store=store)
    assert summary.nothing_read and summary.errors[0].line == 0
    assert summary.as_dict()["errors"][0]["file"].endswith("missing.jsonl")


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CITIZENBOT), *args],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_cli_ingest_idempotent_and_masked(tmp_path: Path, env: dict[str, str], model: Path) -> None:
    jsonl = write_jsonl(tmp_path / "calls.jsonl", [COMPLAINT, INQUIRY, '{"broken"'])
    text = write_text(tmp_path / "calls.txt", TEXT_CALLS, "gb18030")
    args = ("ingest", "--model", str(model), "--json", str(jsonl), str(text))
    done = _cli(env, *args)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["calls_read"] == 4 and summary["tickets_created"] == 3
    assert summary["resolved_contacts"] == 1
    assert summary["errors"][0]["line"] == 3 and summary["errors"][0]["file"] == str(jsonl)

    # the second run finds every call known: nothing parsed, nothing written
    again = _cli(env, *args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(again.stdout)["duplicates_skipped"] == 4

    listed = _cli(env, "tickets", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert sorted(r["source"] for r in rows) == ["C-COMPLAINT", "T-REPORT", "T-SUGGEST"]
    assert PHONE not in listed.stdout and ID_NUMBER not in listed.stdout
    complaint = next(r for r in rows if r["source"] == "C-COMPLAINT")
    assert complaint["phone"] == "138****5678"
    assert complaint["id_number"] == ID_NUMBER[:6] + "********" + ID_NUMBER[-4:]

    nothing = _cli(env, "ingest", "--model", str(model), str(tmp_path / "none.txt"))
    assert nothing.returncode == 1
