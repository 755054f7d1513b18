"""A production-profile ``citizenbot run`` on PostgreSQL and Redis, for tests and benchmarks.

:class:`Databases` creates two fresh PostgreSQL databases (tickets, Rasa
tracker store — separate because both have an ``events`` table) and drops them
afterwards. :class:`Cluster` is :class:`tests.stack.Stack` with the production
profile, N Rasa servers and M action servers on consecutive ports, and helpers
for the fault tests (the process table, restarting PostgreSQL and Redis).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bot.settings import ROOT
from tests.stack import CITIZENBOT

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
PG_BASE = PG_ADMIN_URL.rsplit("/", 1)[0]
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/7")
TOKEN = "test-token"
#: the trusted integration's bearer token for the REST channel (off in production without one)
REST_TOKEN = "test-rest-token-0123456789abcdef"


def pg_available() -> bool:
    return _port_open("127.0.0.1", 5432)


def redis_available() -> bool:
    return _port_open("127.0.0.1", 6379)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def free_block(size: int) -> int:
    """First port of ``size`` consecutive free ports (the runner numbers servers so)."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + size >= 65000:
            continue
        if all(not _port_open("127.0.0.1", base + i) for i in range(size)):
            return base
    raise RuntimeError("no free port block")


def _admin(sql: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(sql))
    finally:
        engine.dispose()


@dataclass
class Databases:
    """Two throw-away PostgreSQL databases: tickets and tracker store."""

    prefix: str = "cb"
    name: str = field(default_factory=lambda: secrets.token_hex(4))

    @property
    def tickets_url(self) -> str:
        return f"{PG_BASE}/{self.prefix}_{self.name}_tickets"

    @property
    def tracker_url(self) -> str:
        return f"{PG_BASE}/{self.prefix}_{self.name}_tracker"

    def create(self) -> Databases:
        for url in (self.tickets_url, self.tracker_url):
            _admin(f'CREATE DATABASE "{url.rsplit("/", 1)[1]}"')
        return self

    def drop(self) -> None:
        for url in (self.tickets_url, self.tracker_url):
            name = url.rsplit("/", 1)[1]
            _admin(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            )
            _admin(f'DROP DATABASE IF EXISTS "{name}"')

    def env(self) -> dict[str, str]:
        return {"DATABASE_URL": self.tickets_url, "TRACKER_STORE_URL": self.tracker_url,
                "REDIS_URL": REDIS_URL}


@dataclass
class Cluster:
    """``citizenbot run --profile production --rasa-servers N --action-servers M``."""

    var_dir: Path
    model: Path
    databases: Databases
    rasa_servers: int = 2
    action_servers: int = 2
    extra_env: dict[str, str] = field(default_factory=dict)
    rasa_port: int = 0
    action_port: int = 0
    console_port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    def __post_init__(self) -> None:
        block = free_block(self.rasa_servers + self.action_servers + 1)
        self.rasa_port = self.rasa_port or block
        self.action_port = self.action_port or block + self.rasa_servers
        self.console_port = self.console_port or block + self.rasa_servers + self.action_servers

    @property
    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "VAR_DIR": str(self.var_dir),
            "RASA_PORT": str(self.rasa_port),
            "ACTION_PORT": str(self.action_port),
            "CONSOLE_PORT": str(self.console_port),
            "RASA_TOKEN": TOKEN,
            # the production profile's REST channel takes only a trusted integration
            "REST_TOKEN": REST_TOKEN,
            **self.databases.env(),
        }
        env.update(self.extra_env)
        return env

    @property
    def rasa_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{self.rasa_port + i}" for i in range(self.rasa_servers)]

    def start(self, timeout: float = 360.0) -> Cluster:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.var_dir / "run.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(
            [str(CITIZENBOT), "run", "--no-train", "--model", str(self.model),
             "--profile", "production", "--rasa-servers", str(self.rasa_servers),
             "--action-servers", str(self.action_servers)],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"citizenbot run exited:\n{self.log()}")
            if self.processes() and all(self.ready(url) for url in self.rasa_urls):
                return self
            time.sleep(1)
        self.stop()
        raise RuntimeError(f"cluster did not become ready:\n{self.log()}")

    def ready(self, url: str) -> bool:
        try:
            return httpx.get(f"{url}/webhooks/ops/ready", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def processes(self) -> list[dict[str, Any]]:
        path = self.var_dir / "run" / "processes.json"
        try:
            return list(json.loads(path.read_text()))
        except (OSError, ValueError):
            return []

    def pid(self, name: str) -> int:
        return int(next(p["pid"] for p in self.processes() if p["name"] == name))

    def kill(self, name: str) -> int:
        """SIGKILL one child (as the OOM killer would); returns its pid."""
        pid = self.pid(name)
        os.kill(pid, signal.SIGKILL)
        return pid

    def wait_restarted(self, name: str, old_pid: int, health_url: str,
                       timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entry = next((p for p in self.processes() if p["name"] == name), None)
            if entry and entry["pid"] != old_pid:
                try:
                    if httpx.get(health_url, timeout=2).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            time.sleep(0.5)
        raise AssertionError(f"{name} was not restarted:\n{self.log()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self, tail: int = 8000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:] if self.log_path else ""

    def say(self, url: str, sender: str, message: str, **extra: Any) -> list[dict[str, Any]]:
        response = httpx.post(f"{url}/webhooks/rest/webhook",
                              json={"sender": sender, "message": message, **extra},
                              headers={"Authorization": f"Bearer {REST_TOKEN}"}, timeout=90)
        response.raise_for_status()
        return list(response.json())

    def say_text(self, url: str, sender: str, message: str, **extra: Any) -> str:
        return "\n".join(m.get("text", "") for m in self.say(url, sender, message, **extra))

    def tickets(self) -> list[dict[str, Any]]:
        from sqlalchemy import create_engine, text

        engine = create_engine(self.databases.tickets_url)
        try:
            with engine.connect() as connection:
                rows = connection.execute(
                    text("SELECT number, sender_id, idempotency_key, facts FROM tickets")
                ).mappings().all()
        finally:
            engine.dispose()
        return [dict(row) for row in rows]


def pg_ctl(action: str) -> None:
    """restart/stop/start the machine's PostgreSQL cluster (fault tests)."""
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action],
                   check=True, timeout=120, capture_output=True)


def wait_port(port: int, *, open_: bool, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _port_open("127.0.0.1", port) == open_:
            return
        time.sleep(0.2)
    raise TimeoutError(f"port {port} did not become {'open' if open_ else 'closed'}")


def redis_stop() -> None:
    subprocess.run(["redis-cli", "shutdown", "nosave"], timeout=30, capture_output=True)
    wait_port(6379, open_=False)


def redis_start() -> None:
    if not redis_available():
        subprocess.run(["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1",
                        "--port", "6379", "--save", "", "--appendonly", "no"],
                       check=True, timeout=30, capture_output=True)
    wait_port(6379, open_=True)
