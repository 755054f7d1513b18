"""Issue 17, item 6 against the real ``citizenbot run``: what ``ps``, ``var/`` and the log show.

The stack starts Rasa through the launcher: its token and JWT secret must be on
no process's command line, ``var/`` must be readable by its owner only, the log
must carry no token, and Rasa must take the console's bearer JWT.
"""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import httpx

from bot.settings import load_settings
from tests.stack import Stack


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_no_secret_on_a_command_line_in_var_or_in_the_log(stack: Stack) -> None:
    settings = load_settings({"VAR_DIR": str(stack.var_dir), "RASA_TOKEN": "test-token"})
    secrets = ("test-token", settings.effective_rasa_jwt_secret)
    table = stack.var_dir / "run" / "processes.json"
    deadline = time.monotonic() + 120  # written once the console answers too
    while not table.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    processes = json.loads(table.read_text())
    assert {p["name"] for p in processes} >= {"Rasa server", "action server", "staff console"}
    assert stack.process is not None
    for pid in [stack.process.pid, *(p["pid"] for p in processes)]:
        line = _cmdline(pid)
        assert line and not any(secret in line for secret in secrets), line
    assert "bot.runner" in _cmdline(next(p["pid"] for p in processes if p["name"] == "Rasa server"))
    for path in stack.var_dir.rglob("*"):
        if path.name == "run.log":
            continue  # written by the test harness, not by citizenbot
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    assert not any(secret in table.read_text() for secret in secrets)

    status = httpx.get(f"{stack.rasa_url}/status", headers=settings.rasa_api_headers(), timeout=10)
    assert status.status_code == 200 and status.json().get("model_file")
    assert httpx.get(f"{stack.rasa_url}/status", timeout=10).status_code == 401
    log = stack.log(tail=None)
    assert not any(secret in log for secret in secrets) and "token=" not in log
