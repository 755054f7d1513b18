"""Reading transcript files: formats, encodings and every kind of broken input (no model)."""

from __future__ import annotations

import io
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from connectors.hotline.formats import MAX_TURN_CHARS, Call, Problem, TranscriptReader
from tests.hotline.conftest import call, write_jsonl, write_text

TZ = ZoneInfo("Asia/Shanghai")

TEXT_CALLS = (
    "# T1 2026-11-27T10:00:00+08:00 13900001111\n"
    "坐席：您好，12345热线。\n"
    "市民：人民路的路灯坏了好几天了。\n"
    "\n"
    "# T2 2026-11-27 10:05:00\n"
    "来电人:我想提个建议。\n"
    "客服: 感谢您的建议。\n"
    "客户：还有一件事\n"
    "话务员：请讲\n"
)


def read(path: Path, **options: str) -> tuple[list[Call], list[Problem], TranscriptReader]:
    with path.open("rb") as handle:
        reader = TranscriptReader(handle, path.name, tz=TZ, **options)
        items = list(reader)
    calls = [i for i in items if isinstance(i, Call)]
    problems = [i for i in items if isinstance(i, Problem)]
    return calls, problems, reader


@pytest.mark.parametrize(
    ("encoding", "bom"), [("utf-8", False), ("utf-8", True), ("gb18030", False)]
)
def test_text_format_in_each_encoding(tmp_path: Path, encoding: str, bom: bool) -> None:
    path = write_text(tmp_path / "calls.txt", TEXT_CALLS, encoding, bom)
    calls, problems, reader = read(path)
    assert problems == []
    assert reader.detected_format == "text"
    assert reader.detected_encoding == encoding
    assert reader.bytes_read == path.stat().st_size
    first, second = calls
    assert (first.call_id, first.caller, first.line) == ("T1", "13900001111", 1)
    assert first.started_at.isoformat() == "2026-11-27T10:00:00+08:00"
    assert [(t.speaker, t.text) for t in first.turns] == [
        ("agent", "您好，12345热线。"),
        ("citizen", "人民路的路灯坏了好几天了。"),
    ]
    # a date and time split by a space, no zone: local time; half- and full-width colons
    assert second.started_at.isoformat() == "2026-11-27T10:05:00+08:00"
    assert [t.speaker for t in second.turns] == ["citizen", "agent", "citizen", "agent"]
    assert second.turns[1].text == "感谢您的建议。"


@pytest.mark.parametrize(
    ("encoding", "bom"), [("utf-8", False), ("utf-8", True), ("gb18030", False)]
)
def test_jsonl_in_each_encoding(tmp_path: Path, encoding: str, bom: bool) -> None:
    rows = [
        call("C1", ("agent", "您好"), ("citizen", "我要投诉"), caller="13812345678", agent="王芳"),
        call("C2", ("市民", "请问社保卡怎么补办"), started_at="2026-11-27T01:15:00Z"),
    ]
    calls, problems, reader = read(write_jsonl(tmp_path / "c.jsonl", rows, encoding, bom))
    assert problems == []
    assert reader.detected_format == "jsonl"
    assert [c.call_id for c in calls] == ["C1", "C2"]
    assert calls[0].caller == "13812345678" and calls[0].agent == "王芳"
    assert calls[1].turns[0].speaker == "citizen"  # Chinese labels accepted in JSON too
    assert calls[1].started_at.astimezone(TZ).hour == 9


def test_explicit_encoding_and_format_are_obeyed(tmp_path: Path) -> None:
    path = write_text(tmp_path / "calls.dat", TEXT_CALLS, "gb18030")
    calls, problems, _ = read(path, format="text", encoding="gb18030")
    assert len(calls) == 2 and problems == []
    # read as UTF-8 on purpose: every Chinese line is reported, nothing is guessed
    calls, problems, _ = read(path, format="text", encoding="utf-8")
    assert problems and all("utf-8" in p.message for p in problems)


def test_broken_lines_are_reported_with_line_numbers_and_the_rest_is_read(
    tmp_path: Path,
) -> None:
    rows: list = [
        call("C1", ("citizen", "我要投诉")),
        '{"call_id": "C2", broken',
        call("", ("citizen", "没有编号")),
        call("C4", ("citizen", "时间不对"), started_at="yesterday"),
        call("C5", ("robot", "谁在说话")),
        "[1, 2]",
        "",
        call("C8", ("citizen", "我要举报")),
        {"call_id": "C9", "started_at": "2026-11-27T09:00:00+08:00", "turns": "oops"},
    ]
    calls, problems, _ = read(write_jsonl(tmp_path / "c.jsonl", rows))
    assert [c.call_id for c in calls] == ["C1", "C8"]
    assert [(p.line, p.severity) for p in problems] == [
        (2, "error"),
        (3, "error"),
        (4, "error"),
        (5, "error"),
        (6, "error"),
        (9, "error"),
    ]
    assert "JSON" in problems[0].message and "column" in problems[0].message
    assert "call_id" in problems[1].message
    assert problems[2].call_id == "C4" and "started_at" in problems[2].message
    assert "robot" in problems[3].message
    assert str(problems[0]).startswith("c.jsonl:2:")


def test_text_format_problems(tmp_path: Path) -> None:
    text = (
        "市民：没有头行的发言\n"
        "坐席：还是没有\n"
        "\n"
        "#\n"
        "市民：编号缺失的通话\n"
        "\n"
        "# T3 not-a-time\n"
        "市民：时间错误\n"
        "\n"
        "# T4 2026-11-27T10:00:00+08:00\n"
        "这一行没有前缀\n"
        "市民：这一句照常读入\n"
    )
    calls, problems, _ = read(write_text(tmp_path / "t.txt", text))
    assert [c.call_id for c in calls] == ["T4"]
    assert [t.text for t in calls[0].turns] == ["这一句照常读入"]
    assert [(p.line, p.severity) for p in problems] == [
        (1, "error"),
        (4, "error"),
        (7, "error"),
        (11, "warning"),
    ]


def test_huge_turn_is_truncated_and_huge_line_skipped(tmp_path: Path) -> None:
    from connectors.hotline import formats

    rows: list = [
        call("BIG", ("citizen", "路灯坏了" * 20_000)),
        call("OK", ("citizen", "我要投诉")),
    ]
    path = write_jsonl(tmp_path / "big.jsonl", rows)
    calls, problems, reader = read(path)
    assert [c.call_id for c in calls] == ["BIG", "OK"]
    assert calls[0].truncated and len(calls[0].turns[0].text) == MAX_TURN_CHARS
    assert [(p.line, p.severity, p.call_id) for p in problems] == [(1, "warning", "BIG")]
    assert reader.bytes_read == path.stat().st_size

    limit = formats.MAX_LINE_BYTES
    formats.MAX_LINE_BYTES = 1000
    try:
        calls, problems, _ = read(path)
    finally:
        formats.MAX_LINE_BYTES = limit
    assert [c.call_id for c in calls] == ["OK"]
    assert problems[0].line == 1 and "longer" in problems[0].message


def test_utf16_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "u16.txt"
    path.write_bytes(TEXT_CALLS.encode("utf-16"))
    calls, problems, _ = read(path)
    assert calls == [] and "UTF-16" in problems[0].message


def test_text_stream_and_empty_file(tmp_path: Path) -> None:
    reader = TranscriptReader(io.StringIO(TEXT_CALLS), "pasted", tz=TZ)
    assert [c.call_id for c in reader if isinstance(c, Call)] == ["T1", "T2"]
    empty = write_text(tmp_path / "empty.jsonl", "")
    assert read(empty)[:2] == ([], [])
