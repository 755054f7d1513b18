"""Every setting of citizenbot, read once from the environment.

Each field has a default that works on one machine with nothing else installed
(SQLite files under ``var/``, loopback ports), so ``make run`` needs no
configuration. Production overrides them through environment variables or an
optional ``.env`` file in the project root; the variable name of a field is its
name in upper case (``database_url`` -> ``DATABASE_URL``).

Modules import :func:`get_settings` and never read ``os.environ`` themselves, so
that one table (the README's) documents everything an operator can change.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any, get_type_hints

from dotenv import dotenv_values

#: The project checkout: settings, data and models are found relative to it.
ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    """Typed, immutable view of the configuration.

    Documented defaults live here and only here; the README's configuration
    table is generated from these docstrings' neighbours (the ``help`` metadata).
    """

    var_dir: Path = field(
        default=ROOT / "var",
        metadata={"help": "运行数据目录 / directory for SQLite files, keys, logs"},
    )
    database_url: str = field(
        default="",
        metadata={"help": "工单库 / ticket store URL (default: SQLite file var/tickets.db)"},
    )
    tracker_store_url: str = field(
        default="",
        metadata={"help": "Rasa tracker store URL (default: SQLite file var/tracker.db)"},
    )
    redis_url: str = field(
        default="",
        metadata={"help": "Redis URL for the lock store and token cache (empty: in-process)"},
    )
    host: str = field(default="127.0.0.1", metadata={"help": "address the servers listen on"})
    rasa_port: int = field(default=5005, metadata={"help": "Rasa server port"})
    action_port: int = field(default=5055, metadata={"help": "action server port"})
    console_port: int = field(default=8000, metadata={"help": "staff console port"})
    rasa_url: str = field(
        default="",
        metadata={"help": "URL the console uses to reach Rasa (default: http://host:rasa_port)"},
    )
    rasa_token: str = field(
        default="",
        metadata={"help": "token guarding Rasa's HTTP API (generated into var/ when empty)"},
    )
    rasa_jwt_secret: str = field(
        default="",
        metadata={
            "help": "secret of the JWTs the console sends Rasa's HTTP API in an "
            "Authorization header (generated into var/ when empty)"
        },
    )
    action_endpoint_url: str = field(
        default="",
        metadata={"help": "action server webhook (default: http://127.0.0.1:action_port/webhook)"},
    )
    model_dir: Path = field(
        default=ROOT / "models", metadata={"help": "where trained Rasa models are kept"}
    )
    model_cache_dir: str = field(
        default="~/.cache/citizenbot/models",
        metadata={
            "help": "trained models shared by every checkout on this machine, so a fresh "
            "clone reuses a model trained for the same inputs (off: no cache)"
        },
    )
    log_level: str = field(default="INFO", metadata={"help": "log level of our own loggers"})
    pii_key: str = field(
        default="",
        metadata={
            "help": "Fernet key(s) encrypting personal data, comma-separated, newest first "
            "(generated into var/ when empty)"
        },
    )
    audit_key: str = field(
        default="",
        metadata={
            "help": "审计 / key of the audit chain's and audit contents' HMACs, kept outside "
            "the database (generated into var/ when empty)"
        },
    )
    audit_checkpoint_file: str = field(
        default="",
        metadata={
            "help": "审计 / append-only file of audit-chain heads, outside the database "
            "(default: var/audit/heads.log)"
        },
    )
    routing_threshold: float = field(
        default=0.6,
        metadata={"help": "below this router confidence a ticket goes to manual dispatch"},
    )
    kb_answer_threshold: float = field(
        default=0.5,
        metadata={"help": "知识库 / FAQ confidence (0–1) at which the bot answers directly"},
    )
    kb_clarify_threshold: float = field(
        default=0.3,
        metadata={
            "help": "知识库 / below answering, from this confidence the bot offers the "
            "3 closest questions; below it, 'not found'"
        },
    )
    working_hours: str = field(
        default="09:00-17:30",
        metadata={"help": "staff working hours, HH:MM-HH:MM (handoff promises)"},
    )
    handoff_wait_minutes: int = field(
        default=5,
        metadata={
            "help": "转人工 / minutes a live handoff waits for staff to take it; the bot "
            "promises this wait and the console turns a session nobody took into a call-back "
            "ticket after it"
        },
    )
    handoff_hours: str = field(
        default="",
        metadata={
            "help": "转人工 / when staff take live chats: empty = WORKING_HOURS on working "
            "days, `always` (7×24 seats) or `never` (call-back tickets only)"
        },
    )
    timezone: str = field(default="Asia/Shanghai", metadata={"help": "local time zone"})
    ticket_prefix: str = field(default="GD", metadata={"help": "ticket number prefix"})
    ticket_reopen_days: int = field(
        default=15,
        metadata={
            "help": "回访不满意可重启的期限 / days after a reply within which an "
            "unsatisfied citizen reopens the ticket"
        },
    )
    ticket_retention_days: int = field(
        default=365,
        metadata={
            "help": "个人信息保留天数 / personal data of tickets closed longer ago is "
            "purged by `citizenbot tickets purge`"
        },
    )
    duplicate_window_days: int = field(
        default=7, metadata={"help": "重复工单 / look this many days back for probable duplicates"}
    )
    duplicate_threshold: float = field(
        default=0.4,
        metadata={
            "help": "text similarity (0-1) above which an open ticket at the same place "
            "is a probable duplicate"
        },
    )

    deploy_profile: str = field(
        default="default",
        metadata={"help": "default (one machine, SQLite) or production; set by "
                  "`citizenbot run --profile`"},
    )

    # -- REST channel -------------------------------------------------------------
    rest_token: str = field(
        default="",
        metadata={"help": "REST 渠道 / bearer token trusted integrations send; with neither this "
                  "nor REST_JWT_SECRET the REST channel is off in production"},
    )
    rest_jwt_secret: str = field(
        default="",
        metadata={"help": "REST 渠道 / secret of JWTs whose `sub` names the only sender they "
                  "may speak as"},
    )
    rest_jwt_algorithm: str = field(
        default="HS256", metadata={"help": "REST 渠道 / algorithm of those JWTs"}
    )

    # -- staff console -----------------------------------------------------------
    console_upload_max_mb: int = field(
        default=100,
        metadata={"help": "控制台 / largest hotline file the upload page accepts (MB)"},
    )
    console_https_only: bool = field(
        default=False,
        metadata={"help": "控制台 / send the session cookie over HTTPS only (behind TLS)"},
    )
    console_session_hours: int = field(
        default=12, metadata={"help": "控制台 / hours a login lasts without activity"}
    )
    console_notify_timeout: float = field(
        default=20.0,
        metadata={"help": "控制台 / seconds to wait for Rasa when telling a citizen about a reply"},
    )

    # -- WeChat Official Account -------------------------------------------------
    wechat_token: str = field(default="", metadata={"help": "WeChat server token"})
    wechat_appid: str = field(default="", metadata={"help": "WeChat AppID"})
    wechat_secret: str = field(default="", metadata={"help": "WeChat AppSecret"})
    wechat_aes_key: str = field(default="", metadata={"help": "WeChat EncodingAESKey (safe mode)"})
    wechat_api_base: str = field(
        default="https://api.weixin.qq.com/cgi-bin/", metadata={"help": "WeChat API base URL"}
    )
    wechat_reply_timeout: float = field(
        default=4.0, metadata={"help": "seconds to answer inline before the 客服 API takes over"}
    )

    # -- Telegram ---------------------------------------------------------------
    telegram_token: str = field(default="", metadata={"help": "Telegram bot token"})
    telegram_secret_token: str = field(
        default="", metadata={"help": "X-Telegram-Bot-Api-Secret-Token expected on webhooks"}
    )
    telegram_api_base: str = field(
        default="https://api.telegram.org/bot", metadata={"help": "Telegram Bot API base URL"}
    )
    telegram_polling: bool = field(
        default=False,
        metadata={"help": "Telegram: long polling instead of the webhook (development; "
                  "`citizenbot run --telegram-polling`)"},
    )

    def __post_init__(self) -> None:
        # Derived defaults depend on other fields, so they are filled here once.
        var = self.var_dir
        derived = {
            "database_url": f"sqlite:///{var / 'tickets.db'}",
            "tracker_store_url": f"sqlite:///{var / 'tracker.db'}",
            "rasa_url": f"http://127.0.0.1:{self.rasa_port}",
            "action_endpoint_url": f"http://127.0.0.1:{self.action_port}/webhook",
        }
        for name, value in derived.items():
            if not getattr(self, name):
                object.__setattr__(self, name, value)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def secret(self, name: str) -> str:
        """Return a generated secret kept in ``var/``, creating it on first use.

        One machine then needs no configuration, and the value survives restarts
        (a new PII key on every start would make stored data unreadable).

        The runner starts its children together and each may be the first to ask
        for a secret, so the file appears whole or not at all: the value is written
        to a private file and hard-linked into place, which fails for every process
        but one. A reader never sees an empty file (Rasa would take an empty JWT
        secret and refuse the runner's tokens), and two processes never keep two
        different keys.
        """
        path = self.var_dir / f"{name}.secret"
        if path.exists():
            return _read_secret(path)
        self.var_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if name == "pii_key":
            from cryptography.fernet import Fernet

            value = Fernet.generate_key().decode()
        else:
            value = secrets.token_urlsafe(32)
        draft = path.with_name(f".{path.name}.{secrets.token_hex(8)}")  # one per writer
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(value)
                handle.flush()
                os.fsync(handle.fileno())
            os.link(draft, path)
        except FileExistsError:
            return _read_secret(path)  # another process was first: its value is the one
        finally:
            draft.unlink(missing_ok=True)
        return value

    @property
    def effective_rasa_token(self) -> str:
        return self.rasa_token or self.secret("rasa_token")

    @property
    def effective_rasa_jwt_secret(self) -> str:
        return self.rasa_jwt_secret or self.secret("rasa_jwt")

    def rasa_api_headers(self, lifetime: int = 300) -> dict[str, str]:
        """``Authorization: Bearer <JWT>`` for Rasa's HTTP API, never a ``?token=`` URL.

        A token in a query string ends up in access logs, proxy logs and httpx's
        request log lines; a short-lived admin JWT in a header does not.
        """
        import time

        import jwt

        claims = {"user": {"username": "citizenbot", "role": "admin"},
                  "exp": int(time.time()) + lifetime}
        token = jwt.encode(claims, self.effective_rasa_jwt_secret, algorithm="HS256")
        return {"Authorization": f"Bearer {token}"}

    @property
    def effective_audit_key(self) -> bytes:
        return (self.audit_key or self.secret("audit_key")).encode("utf-8")

    @property
    def effective_audit_checkpoint_file(self) -> Path:
        return Path(self.audit_checkpoint_file or self.var_dir / "audit" / "heads.log")

    @property
    def effective_pii_keys(self) -> list[str]:
        raw = self.pii_key or self.secret("pii_key")
        return [key.strip() for key in raw.split(",") if key.strip()]


def _read_secret(path: Path) -> str:
    value = path.read_text().strip()
    if not value:
        # left by a process that died while writing it (before writes were atomic)
        raise RuntimeError(f"{path} is empty: delete it only if nothing was stored "
                           "with it yet (a PII or audit key cannot be regenerated)")
    return value


def _convert(raw: str, kind: Any) -> Any:
    if kind is bool:
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if kind in (int, float, Path):
        return kind(raw)
    return raw


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Build settings from ``environ`` (default: ``.env`` then the process environment)."""
    if environ is None:
        environ = {k: v for k, v in dotenv_values(ROOT / ".env").items() if v is not None}
        environ.update(os.environ)
    hints = get_type_hints(Settings)
    values: dict[str, Any] = {}
    for f in fields(Settings):
        raw = environ.get(f.name.upper())
        if raw is not None and raw != "":
            values[f.name] = _convert(raw, hints[f.name])
    return Settings(**values)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()


def describe() -> list[tuple[str, str, str]]:
    """(variable, default, help) rows for the README and ``citizenbot config``."""
    defaults = Settings(var_dir=Path("var"))
    rows = []
    for f in dataclasses.fields(Settings):
        rows.append((f.name.upper(), str(getattr(defaults, f.name)), f.metadata.get("help", "")))
    return rows
