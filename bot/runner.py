"""``citizenbot run`` and ``citizenbot train``: start every process on embedded defaults.

One command starts the action server and the Rasa server (and the staff
console when it is installed) as child processes, waits until each answers,
prints where to find them, and stops all of them on Ctrl-C. Rasa reads its
endpoints from the environment, filled here from :mod:`bot.settings` so an
operator configures the system in one place.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url

from bot.settings import ROOT, Settings, get_settings

console = Console(stderr=True)

#: seconds a process may take to answer after start (Rasa loads TensorFlow: ~25 s)
START_TIMEOUT = 240.0


@dataclass
class Service:
    name: str
    command: list[str]
    health_url: str
    public_url: str
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)


def rasa_environment(settings: Settings) -> dict[str, str]:
    """Environment variables that ``endpoints.yml`` reads."""
    env = {
        "ACTION_ENDPOINT_URL": settings.action_endpoint_url,
        "TRACKER_STORE_URL": settings.tracker_store_url,
        "LOCK_STORE_TYPE": "in_memory",
        "LOCK_STORE_HOST": "",
        "LOCK_STORE_PORT": "6379",
        "LOCK_STORE_DB": "1",
    }
    if settings.redis_url:
        url = make_url(settings.redis_url)
        env.update(
            LOCK_STORE_TYPE="redis",
            LOCK_STORE_HOST=url.host or "127.0.0.1",
            LOCK_STORE_PORT=str(url.port or 6379),
            LOCK_STORE_DB=str(url.database or 1),
        )
    return env


def services(settings: Settings, model: Path) -> list[Service]:
    bin_dir = Path(sys.executable).parent
    host = settings.host
    action = Service(
        name="action server",
        command=[
            sys.executable,
            "-m",
            "rasa_sdk",
            "--actions",
            "actions",
            "--port",
            str(settings.action_port),
        ],
        health_url=f"http://127.0.0.1:{settings.action_port}/health",
        public_url=f"http://{host}:{settings.action_port}/webhook",
    )
    rasa = Service(
        name="Rasa server",
        command=[
            str(bin_dir / "rasa"),
            "run",
            "--model",
            str(model),
            "--endpoints",
            str(ROOT / "endpoints.yml"),
            "--credentials",
            str(ROOT / "credentials.yml"),
            "--interface",
            host,
            "--port",
            str(settings.rasa_port),
            "--enable-api",
            "--auth-token",
            settings.effective_rasa_token,
            "--cors",
            "*",
        ],
        health_url=f"http://127.0.0.1:{settings.rasa_port}/status?token={settings.effective_rasa_token}",
        public_url=f"http://{host}:{settings.rasa_port}/webhooks/rest/webhook",
    )
    return [action, rasa]


def _wait_healthy(service: Service, deadline: float) -> None:
    assert service.process is not None
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise RuntimeError(f"{service.name} exited with code {service.process.returncode}")
        try:
            response = httpx.get(service.health_url, timeout=2.0)
            if response.status_code == 200:
                body = response.json() if "json" in response.headers.get("content-type", "") else {}
                # Rasa's /status answers before the model is loaded; wait for it.
                if "model_file" not in body or body.get("model_file"):
                    return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{service.name} did not answer within {START_TIMEOUT:.0f} s")


def _stop(running: list[Service]) -> None:
    for service in reversed(running):
        if service.process and service.process.poll() is None:
            service.process.send_signal(signal.SIGTERM)
    for service in reversed(running):
        if service.process is None:
            continue
        try:
            service.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            service.process.kill()
            service.process.wait()


def run(
    no_train: bool = typer.Option(
        False, "--no-train", help="fail instead of training a stale model"
    ),
    model_file: Path | None = typer.Option(
        None, "--model", help="serve this model file instead of the one for the current inputs"
    ),
) -> None:
    """Start the Rasa server, the action server and the console; Ctrl-C stops them."""
    from bot.model import ensure_model
    from bot.tickets import TicketStore

    settings = get_settings()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    TicketStore(settings.database_url, upgrade=True)
    try:
        model = model_file or ensure_model(train=not no_train)
        if not model.exists():
            raise FileNotFoundError(f"model file not found: {model}")
    except FileNotFoundError as error:
        console.print(f"[red]{error}[/red] — run `citizenbot train` first")
        raise typer.Exit(1) from error

    env = {**os.environ, **rasa_environment(settings), "SANIC_HOST": settings.host}
    running: list[Service] = []
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        for service in services(settings, model):
            # Children get their own process group so Ctrl-C reaches them only through us.
            service.process = subprocess.Popen(
                service.command, cwd=ROOT, env=env, start_new_session=True
            )
            running.append(service)
        for service in running:
            _wait_healthy(service, deadline)
        _print_ready(settings, running, model)
        while not stopping:
            for service in running:
                if service.process and service.process.poll() is not None:
                    raise RuntimeError(
                        f"{service.name} exited with code {service.process.returncode}"
                    )
            time.sleep(0.5)
    except RuntimeError as error:
        console.print(f"[red]{error}[/red]")
        _stop(running)
        raise typer.Exit(1) from error
    console.print("stopping …")
    _stop(running)
    console.print("stopped.")


def _print_ready(settings: Settings, running: list[Service], model: Path) -> None:
    table = Table(title="citizenbot is running / 已启动", show_lines=False)
    table.add_column("service")
    table.add_column("address")
    for service in running:
        table.add_row(service.name, service.public_url)
    table.add_row("tickets", settings.database_url)
    table.add_row("conversations", settings.tracker_store_url)
    table.add_row("model", model.name)
    console.print(table)
    console.print(
        "Try / 试一试:\n"
        f"  curl -s -XPOST http://127.0.0.1:{settings.rasa_port}/webhooks/rest/webhook "
        '-H \'Content-Type: application/json\' -d \'{"sender": "me", "message": "你好"}\'\n'
        "Press Ctrl-C to stop / 按 Ctrl-C 停止."
    )


def train(
    force: bool = typer.Option(False, "--force", help="train even when the model is fresh"),
) -> None:
    """Train the Rasa model when its inputs changed (config, domain, data, NLU code)."""
    from bot.model import ensure_model, model_path

    target = model_path()
    if force and target.exists():
        target.unlink()
    fresh = target.exists()
    path = ensure_model()
    console.print(f"{'up to date' if fresh else 'trained'}: {path}")


def register(app: typer.Typer) -> None:
    app.command(help="Start every process (Rasa, actions, console) on embedded defaults.")(run)
    app.command(help="Train the Rasa model if its inputs changed.")(train)
