"""Restarting keeps tickets and conversations (SQLite files under var/)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.stack import Stack

pytestmark = pytest.mark.stack


def test_restart_keeps_tickets_and_an_ongoing_conversation(model: Path, tmp_path: Path) -> None:
    first = Stack(var_dir=tmp_path / "var", model=model).start()
    try:
        # no place named: the form asks where (a named one would be taken, not asked)
        stack_reply = first.say_text("restart-1", "我要投诉我们这边的路灯坏了一个多月没人修")
        assert "哪里" in stack_reply, stack_reply
        first.say_text("restart-1", "人民公园东门")
    finally:
        first.stop()

    second = Stack(var_dir=tmp_path / "var", model=model).start()
    try:
        # The form goes on where it stopped: next it asks since when.
        reply = second.say_text("restart-1", "上个月初开始的")
        assert "手机号" in reply, reply
        second.say_text("restart-1", "不留")
        reply = second.say_text("restart-1", "确认")
        number = re.search(r"GD\d{8}-\d{4}", reply)
        assert number, reply
    finally:
        second.stop()

    third = Stack(var_dir=tmp_path / "var", model=model)
    listed = json.loads(third.citizenbot("tickets", "list", "--json").stdout)
    assert [t["number"] for t in listed] == [number.group(0)]
