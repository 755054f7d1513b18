"""``citizenbot run`` and ``citizenbot train``: start every process on embedded defaults.

One command starts the action server and the Rasa server (and the staff
console when it is installed) as child processes, waits until each answers,
and stops all of them on Ctrl-C. Rasa reads its endpoints from the environment,
filled here from :mod:`bot.settings` so an operator configures the system in
one place.

What the operator's terminal shows (default profile): one line per process as it
comes up, then a box with the addresses, the first console account's one-time
password (created here, before the console starts, so that it is shown once, in
the box, and never written to a log) and how to stop. Everything the processes
log, third-party warnings included, goes to ``var/log/citizenbot.log``. The
production profile keeps the processes' JSON log lines on stderr, for the log
collector.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

import httpx
import typer
from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from sqlalchemy.engine import make_url

from bot.settings import ROOT, Settings, get_settings

if TYPE_CHECKING:
    from bot.tickets import TicketStore

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
    #: environment on top of the shared one (scale-out: each Rasa server's action server)
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    restarts: int = 0
    #: the health check needs Rasa's API credentials (sent as a header, never in the URL)
    auth: bool = False


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
            LOCK_STORE_TYPE="connectors.lock_store.CitizenLockStore",
            LOCK_STORE_HOST=url.host or "127.0.0.1",
            LOCK_STORE_PORT=str(url.port or 6379),
            LOCK_STORE_DB=str(url.database or 1),
        )
    return env


def services(settings: Settings, model: Path) -> list[Service]:
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
        # `python -m bot.runner` is `rasa` with the API token and JWT secret added
        # in-process (rasa_launch): never on the command line, where `ps` shows them
        command=[
            sys.executable,
            "-m",
            "bot.runner",
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
            "--cors",
            "*",
        ],
        health_url=f"http://127.0.0.1:{settings.rasa_port}/status",
        public_url=f"http://{host}:{settings.rasa_port}/webhooks/rest/webhook",
        auth=True,
    )
    console_service = Service(
        name="staff console",
        command=[sys.executable, "-m", "bot.console", "--model", str(model)],
        health_url=f"http://127.0.0.1:{settings.console_port}/healthz",
        public_url=f"http://{host}:{settings.console_port}/",
    )
    return [action, rasa, console_service]


PROFILES = ("default", "production")


def check_production(settings: Settings) -> list[str]:
    """What the production profile needs and is missing (empty: ready to start).

    Several Rasa servers must share conversations and locks, so SQLite files and
    the in-memory lock store are refused rather than silently splitting state.
    """
    problems = []
    for name in ("database_url", "tracker_store_url"):
        if not getattr(settings, name).startswith("postgresql"):
            problems.append(f"{name.upper()} must be a postgresql:// URL (docs/deploy.md)")
    if settings.database_url == settings.tracker_store_url:
        # Rasa's tracker table is called `events`, like the ticket audit table.
        problems.append("DATABASE_URL and TRACKER_STORE_URL must be different databases")
    if not settings.redis_url:
        problems.append("REDIS_URL must be set: the Rasa servers share a Redis lock store")
    return problems


def _moved(service: Service, port: int, name: str, env: dict[str, str]) -> Service:
    """A copy of ``service`` listening on ``port`` (the one-server command is the template)."""
    old = str(service.port)
    command = list(service.command)
    command[command.index("--port") + 1] = str(port)
    return Service(
        name=name,
        command=command,
        health_url=service.health_url.replace(f":{old}/", f":{port}/"),
        public_url=service.public_url.replace(f":{old}/", f":{port}/"),
        env=env,
        port=port,
        auth=service.auth,
    )


def scale_out(
    settings: Settings,
    planned: list[Service],
    *,
    rasa_servers: int,
    action_servers: int,
    logging_config: Path | None,
) -> list[Service]:
    """N action servers on ACTION_PORT.., M Rasa servers on RASA_PORT.. (consecutive).

    Rasa server i calls action server i mod N (static round robin: a Rasa server
    keeps one keep-alive pool, and a dead action server costs only the
    conversations on its Rasa servers an apology until it is restarted). Every
    child logs through ``logging_config`` (masked, JSON in production).
    """
    action = next(s for s in planned if s.name == "action server")
    rasa = next(s for s in planned if s.name == "Rasa server")
    action.port, rasa.port = settings.action_port, settings.rasa_port
    others = [s for s in planned if s not in (action, rasa)]
    actions = []
    for index in range(action_servers):
        name = "action server" if action_servers == 1 else f"action server {index + 1}"
        moved = _moved(action, settings.action_port + index, name,
                       {"CITIZENBOT_SERVICE": f"actions-{index + 1}"})
        if logging_config:
            moved.command += ["--logging-config_file", str(logging_config)]
        actions.append(moved)
    rasas = []
    for index in range(rasa_servers):
        target = actions[index % action_servers]
        name = "Rasa server" if rasa_servers == 1 else f"Rasa server {index + 1}"
        env = {"CITIZENBOT_SERVICE": f"rasa-{index + 1}"}
        if action_servers > 1 or rasa_servers > 1:
            env["ACTION_ENDPOINT_URL"] = f"http://127.0.0.1:{target.port}/webhook"
        if index > 0:
            env["TELEGRAM_POLLING"] = "false"  # one poller per bot token, or Telegram refuses
        moved = _moved(rasa, settings.rasa_port + index, name, env)
        if logging_config:
            moved.command += ["--logging-config-file", str(logging_config)]
        rasas.append(moved)
    return [*actions, *rasas, *others]


def _start(service: Service, env: dict[str, str], output: IO[str] | None = None) -> None:
    # Children get their own process group so Ctrl-C reaches them only through us.
    service.process = subprocess.Popen(
        service.command,
        cwd=ROOT,
        env={**env, **service.env},
        start_new_session=True,
        stdout=output,
        stderr=subprocess.STDOUT if output is not None else None,
    )


def log_path(settings: Settings) -> Path:
    """Where the default profile's processes log (the terminal shows only the box)."""
    return settings.var_dir / "log" / "citizenbot.log"


def _tail(path: Path | None, lines: int = 30) -> str:
    if path is None or not path.exists():
        return ""
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - 64 * 1024))
        text = handle.read().decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def _write_process_table(settings: Settings, running: list[Service]) -> None:
    """var/run/processes.json: name, pid, port of each child (ops scripts, fault tests)."""
    import json

    path = settings.var_dir / "run" / "processes.json"
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    table = [
        {"name": s.name, "pid": s.process.pid if s.process else None, "port": s.port,
         "health_url": s.health_url, "restarts": s.restarts}
        for s in running
    ]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps(table, indent=2))
    path.chmod(0o600)


def _wait_healthy(service: Service, deadline: float) -> None:
    assert service.process is not None
    settings = get_settings()
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise RuntimeError(f"{service.name} exited with code {service.process.returncode}")
        try:
            headers = settings.rasa_api_headers() if service.auth else {}
            response = httpx.get(service.health_url, headers=headers, timeout=2.0)
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
    telegram_polling: bool = typer.Option(
        False, "--telegram-polling", help="Telegram: poll for updates instead of the webhook (dev)"
    ),
    profile: str = typer.Option(
        "default", "--profile",
        help="default: SQLite, one of each; production: PostgreSQL + Redis required, "
        "JSON logs, crashed processes restarted (docs/deploy.md)",
    ),
    rasa_servers: int = typer.Option(
        1, "--rasa-servers", min=1, help="Rasa servers on RASA_PORT, RASA_PORT+1, …"
    ),
    action_servers: int = typer.Option(
        1, "--action-servers", min=1, help="action servers on ACTION_PORT, ACTION_PORT+1, …"
    ),
) -> None:
    """Start the Rasa server, the action server and the console; Ctrl-C stops them."""
    from bot.logging import ENV_JSON, install, open_log_file, write_config
    from bot.model import ensure_model
    from bot.tickets import TicketStore

    settings = get_settings()
    production = profile == "production"
    if profile not in PROFILES:
        console.print(f"[red]unknown profile {profile!r}[/red] (one of {', '.join(PROFILES)})")
        raise typer.Exit(2)
    problems = check_production(settings) if production else []
    if not production and rasa_servers > 1 and not settings.redis_url:
        problems.append("several Rasa servers need REDIS_URL (a shared lock store)")
    if production and not (settings.rest_token or settings.rest_jwt_secret):
        console.print("[yellow]REST channel off: set REST_TOKEN or REST_JWT_SECRET to use it "
                      "(docs/security.md)[/yellow]")
    if problems:
        for problem in problems:
            console.print(f"[red]{problem}[/red]")
        raise typer.Exit(2)
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    # default profile: the processes' logs and libraries' warnings go to a file
    logfile = None if production else log_path(settings)
    install(service="runner", json_lines=production, level=settings.log_level, path=logfile)
    output = open_log_file(logfile) if logfile is not None else None
    if logfile is not None:
        console.print(f"starting citizenbot … (log: {_shown(logfile)})")
    store = TicketStore(settings.database_url, upgrade=True)
    try:
        model = model_file or ensure_model(train=not no_train)
        if not model.exists():
            raise FileNotFoundError(f"model file not found: {model}")
    except FileNotFoundError as error:
        console.print(f"[red]{error}[/red] — run `citizenbot train` first")
        raise typer.Exit(1) from error

    env = {**os.environ, **rasa_environment(settings), "SANIC_HOST": settings.host,
           ENV_JSON: "1" if production else "0", "DEPLOY_PROFILE": profile}
    logging_config = write_config(
        settings.var_dir / "run" / "logging.json", json_lines=production,
        level=settings.log_level,
    )
    if telegram_polling:
        env["TELEGRAM_POLLING"] = "true"  # read by connectors.telegram in the Rasa server
    running: list[Service] = []
    stopping = False
    # the first console account, made here so that its password is shown in the box
    # (once, on the terminal) and never reaches the console's log
    password = first_admin_password(store)
    store.dispose()

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        planned = scale_out(
            settings, services(settings, model), rasa_servers=rasa_servers,
            action_servers=action_servers, logging_config=logging_config,
        )
        for service in planned:
            _start(service, env, output)
            running.append(service)
        for service in running:
            _wait_healthy(service, deadline)
            console.print(f"  [green]✓[/green] {service.name}")
        _write_process_table(settings, running)
        _print_ready(settings, running, model, password=password, logfile=logfile)
        while not stopping:
            for service in running:
                if service.process and service.process.poll() is not None:
                    if not production:
                        raise RuntimeError(
                            f"{service.name} exited with code {service.process.returncode}"
                        )
                    # production: a crashed child is restarted (backoff up to 30 s);
                    # its peers keep serving meanwhile
                    service.restarts += 1
                    console.print(f"[yellow]{service.name} exited with code "
                                  f"{service.process.returncode}; restarting[/yellow]")
                    time.sleep(min(30.0, 0.5 * 2 ** min(service.restarts, 6)))
                    _start(service, env, output)
                    _write_process_table(settings, running)
            time.sleep(0.5)
    except RuntimeError as error:
        console.print(f"[red]{escape(str(error))}[/red]")
        if logfile is not None:
            console.print(f"last lines of {_shown(logfile)}:\n{escape(_tail(logfile))}")
        if password:  # created for this start and shown nowhere else
            console.print(f"控制台首个账号 admin，一次性密码 / one-time password:  {password}")
        _stop(running)
        raise typer.Exit(1) from error
    console.print("stopping …")
    _stop(running)
    console.print("stopped.")


def first_admin_password(store: TicketStore) -> str | None:
    """Create the console's ``admin`` when there is no account yet; its one-time password."""
    from bot.console.accounts import Accounts

    return Accounts(store.engine, store.departments()).ensure_first_admin()


def _shown(path: Path) -> str:
    """``path`` relative to the project when it is inside it (shorter in the box)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _safe_url(url: str) -> str:
    """A database URL without its password (the box may be on a shared screen)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


def ready_box(
    settings: Settings,
    running: list[Service],
    model: Path,
    *,
    password: str | None = None,
    logfile: Path | None = None,
) -> Panel:
    """What the operator needs once everything answers: where, how to log in, how to stop."""
    host = settings.host
    rows = Table.grid(padding=(0, 2))
    rows.add_column(style="bold")
    rows.add_column()
    rows.add_row("工作人员控制台 / staff console", f"http://{host}:{settings.console_port}/")
    rows.add_row("网页客服演示 / web chat demo",
                 f"http://{host}:{settings.rasa_port}/webchat/demo.html")
    rows.add_row("REST 渠道 / REST channel",
                 f"http://{host}:{settings.rasa_port}/webhooks/rest/webhook")
    for service in running:
        if service.name.startswith("Rasa server "):  # several, when scaled out
            rows.add_row(service.name, service.public_url)
    rows.add_row("工单库 / tickets", _safe_url(settings.database_url))
    rows.add_row("模型 / model", model.name)
    if logfile is not None:
        rows.add_row("日志 / log", _shown(logfile))
    lines: list[RenderableType] = [rows, ""]
    if password:
        lines += [
            "[bold]控制台首个账号 / first console account:[/bold]  admin",
            f"[bold]一次性密码 / one-time password:[/bold]  {escape(password)}",
            "只显示这一次，首次登录须修改 / shown once: change it at first login "
            f"(http://{host}:{settings.console_port}/login)",
            "",
        ]
    lines.append("按 Ctrl-C 停止全部服务 / press Ctrl-C to stop everything")
    return Panel(
        Group(*lines),
        title="citizenbot 已启动 / is running",
        border_style="green",
        expand=False,
    )


def _print_ready(
    settings: Settings,
    running: list[Service],
    model: Path,
    *,
    password: str | None = None,
    logfile: Path | None = None,
) -> None:
    console.print(ready_box(settings, running, model, password=password, logfile=logfile))


def train(
    force: bool = typer.Option(False, "--force", help="train even when the model is fresh"),
) -> None:
    """Train the Rasa model when its inputs changed (config, domain, data, NLU code)."""
    from bot.model import ensure_model, model_path

    target = model_path()
    if force and target.exists():
        target.unlink()
    fresh = target.exists()
    path = ensure_model(use_cache=not force)
    console.print(f"{'up to date' if fresh else 'ready'}: {path}")


def rasa_launch(argv: list[str]) -> None:
    """``rasa <argv>`` with the API token and the JWT secret added inside this process.

    Rasa reads them only from its command line (``--auth-token``,
    ``--jwt-secret``); a child's command line is world-readable (``ps``,
    ``/proc/<pid>/cmdline``), so the runner starts ``python -m bot.runner …``
    and the secrets are appended to ``sys.argv`` here, which changes what
    Rasa's argument parser reads and not what the kernel shows. They come from
    the environment (``RASA_TOKEN``, ``RASA_JWT_SECRET``) or ``var/`` (0600).
    """
    settings = get_settings()
    sys.argv = [
        "rasa",
        *argv,
        # "--name=value": a generated secret may start with "-", which argparse
        # would take for an option in "--name value" form and refuse to start
        f"--auth-token={settings.effective_rasa_token}",
        f"--jwt-secret={settings.effective_rasa_jwt_secret}",
        "--jwt-method",
        "HS256",
    ]
    from rasa.__main__ import main

    main()


def register(app: typer.Typer) -> None:
    app.command(help="Start every process (Rasa, actions, console) on embedded defaults.")(run)
    app.command(help="Train the Rasa model if its inputs changed.")(train)


if __name__ == "__main__":
    rasa_launch(sys.argv[1:])
