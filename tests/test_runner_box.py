"""Issue 18, item 6: ``make run`` ends with a clear box; the processes' logs go to a file.

The box (addresses, the first console account's one-time password, how to stop) is
what the operator's terminal shows; third-party warnings and every process's log go
to ``var/log/citizenbot.log`` (0600), and the password never does.
"""

from __future__ import annotations

import re
import stat
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console

from bot.runner import ready_box, services
from bot.settings import load_settings
from tests.stack import Stack

PASSWORD = re.compile(r"one-time password[^:]*:\s+(\S+)")  # what the browser tests read


def _render(**changes: str) -> str:
    settings = load_settings({"VAR_DIR": "/tmp/citizenbot-box", **changes})
    model = Path("models/citizenbot-0123456789ab.tar.gz")
    out = Console(width=80, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    out.print(ready_box(settings, services(settings, model), model, password="Pw-1_abcDEF",
                        logfile=Path("var/log/citizenbot.log")))
    return out.export_text()


def test_the_box_has_addresses_password_and_how_to_stop() -> None:
    text = _render(CONSOLE_PORT="8123")
    assert "http://127.0.0.1:8123/" in text and "/webchat/demo.html" in text
    assert "/webhooks/rest/webhook" in text and "var/log/citizenbot.log" in text
    found = PASSWORD.search(text)
    assert found and found.group(1) == "Pw-1_abcDEF"
    assert "Ctrl-C" in text
    assert all(len(line) <= 80 for line in text.splitlines())


def test_the_box_hides_a_database_password() -> None:
    text = _render(DATABASE_URL="postgresql://bot:s3cret-pw@db.internal/tickets")
    assert "s3cret-pw" not in text and "db.internal/tickets" in text


def test_warnings_go_to_the_log_file_not_the_terminal(tmp_path: Path) -> None:
    log = tmp_path / "log" / "x.log"
    script = (
        "import logging, warnings\n"
        "from pathlib import Path\n"
        "from bot.logging import install\n"
        f"install(service='t', path=Path({str(log)!r}))\n"
        "warnings.warn('a library deprecation', DeprecationWarning)\n"
        "warnings.warn('a library warning')\n"
        "logging.getLogger('lib').warning('call 13812345678')\n"
    )
    done = subprocess.run([sys.executable, "-W", "always", "-c", script],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and done.stdout == ""
    text = log.read_text()
    assert "a library warning" in text and "138****5678" in text and "13812345678" not in text
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700
    # the time of a line is not masked as if it were a number
    assert re.search(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", text, re.M)


def test_citizenbot_run_shows_the_box_and_logs_to_var_log(stack: Stack) -> None:
    deadline = time.monotonic() + 180  # printed once the console answers too
    while "citizenbot 已启动" not in (terminal := stack.terminal()):
        assert time.monotonic() < deadline, terminal
        time.sleep(0.5)
    box = terminal[terminal.index("citizenbot 已启动"):]
    assert f":{stack.console_port}/" in box and "Ctrl-C" in box
    logfile = stack.var_dir / "log" / "citizenbot.log"
    logged = logfile.read_text(errors="replace")
    # what the processes log is in the file, not on the terminal
    assert "rasa" in logged.lower() and len(logged.splitlines()) > 10
    assert "WARNING" not in terminal and "Warning" not in terminal
    found = PASSWORD.search(terminal)
    if found:  # the stack's first start: the password is shown once, and only there
        assert found.group(1) not in logged
        assert terminal.count(found.group(1)) == 1
    assert stat.S_IMODE(logfile.stat().st_mode) == 0o600
