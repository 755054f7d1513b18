"""Start the real system (``citizenbot run``) for tests and talk to it over HTTP.

The model is trained once per session (and reused across sessions while its
inputs are unchanged, see :mod:`bot.model`); each :class:`Stack` is a real Rasa
server and action server on free ports, with its own ``var/`` directory.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bot.settings import ROOT

CITIZENBOT = Path(sys.executable).with_name("citizenbot")


def fresh_sender(name: str) -> str:
    """A sender id no other test uses: conversations do not leak into each other."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Stack:
    var_dir: Path
    model: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    rasa_port: int = field(default_factory=free_port)
    action_port: int = field(default_factory=free_port)
    console_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "VAR_DIR": str(self.var_dir),
            "RASA_PORT": str(self.rasa_port),
            "ACTION_PORT": str(self.action_port),
            "CONSOLE_PORT": str(self.console_port),
            "RASA_TOKEN": "test-token",
        }
        env.pop("DATABASE_URL", None)
        env.pop("TRACKER_STORE_URL", None)
        env.update(self.extra_env)
        return env

    @property
    def rasa_url(self) -> str:
        return f"http://127.0.0.1:{self.rasa_port}"

    @property
    def database_url(self) -> str:
        return self.env.get("DATABASE_URL") or f"sqlite:///{self.var_dir / 'tickets.db'}"

    def start(self, timeout: float = 300.0) -> Stack:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.var_dir / "run.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(
            [
                str(CITIZENBOT),
                "run",
                "--no-train",
                *(["--model", str(self.model)] if self.model else []),
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"citizenbot run exited:\n{self.log()}")
            if self.ready():
                return self
            time.sleep(1)
        self.stop()
        raise RuntimeError(f"citizenbot run did not become ready:\n{self.log()}")

    def ready(self) -> bool:
        try:
            status = httpx.get(f"{self.rasa_url}/status?token=test-token", timeout=2)
            actions = httpx.get(f"http://127.0.0.1:{self.action_port}/health", timeout=2)
        except httpx.HTTPError:
            return False
        return (
            status.status_code == 200
            and bool(status.json().get("model_file"))
            and actions.status_code == 200
        )

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def terminal(self) -> str:
        """What ``citizenbot run`` printed on its terminal (the box, errors)."""
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def log(self, tail: int | None = 6000) -> str:
        """What the system printed on its terminal, then what its processes wrote to
        ``var/log/citizenbot.log``: the last ``tail`` characters (errors), or all."""
        text = self.terminal()
        processes = self.var_dir / "log" / "citizenbot.log"
        if processes.exists():
            text += processes.read_text(errors="replace")
        return text[-tail:] if tail else text

    def say(self, sender: str, message: str, **extra: Any) -> list[dict[str, Any]]:
        """Send one message over the REST channel and return the bot's messages."""
        response = httpx.post(
            f"{self.rasa_url}/webhooks/rest/webhook",
            json={"sender": sender, "message": message, **extra},
            timeout=60,
        )
        response.raise_for_status()
        return list(response.json())

    def say_text(self, sender: str, message: str) -> str:
        return "\n".join(m.get("text", "") for m in self.say(sender, message))

    def citizenbot(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(CITIZENBOT), *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )
