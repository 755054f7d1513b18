"""Logging for every process we start: personal data masked, JSON lines in production.

Why here and not in each process: the Rasa server, the action server and our own
commands all write logs, and a phone or 身份证 number a citizen typed must appear
in none of them (PIPL; docs/deploy.md). Three layers make that hold even for
records from libraries whose handlers we do not control:

* a log-record factory masks every record's message when it is created,
  whichever logger or handler later sees it;
* :class:`MaskingFilter` does the same on a handler (for ``dictConfig`` files:
  ``rasa run --logging-config-file`` and ``rasa_sdk --logging-config_file``);
* the formatters mask their final output, which covers exception text.

Each record also carries the request id of the message being handled (a
context variable set by the channel hook in :mod:`connectors.rasa_hooks` and by the
actions), so one citizen message can be followed from channel to ticket.

The runner tells its children how to log through two process-internal
environment variables (``CITIZENBOT_LOG_JSON``, ``CITIZENBOT_SERVICE``) and a
generated ``dictConfig`` file (:func:`write_config`).
"""

from __future__ import annotations

import contextvars
import json
import logging
import logging.config
import os
import re
import sys
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from bot.privacy import mask_text

__all__ = [
    "JsonFormatter",
    "MaskingFilter",
    "TextFormatter",
    "install",
    "mask_log_text",
    "open_log_file",
    "redact_secrets",
    "request_id_var",
    "warnings_to",
    "write_config",
]

#: request id of the message being handled in this task (``-`` outside one)
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "citizenbot_request_id", default=None
)

#: set by the runner for its children: "1" → JSON lines
ENV_JSON = "CITIZENBOT_LOG_JSON"
#: set by the runner for its children: the service name put on every record
ENV_SERVICE = "CITIZENBOT_SERVICE"

_UNICODE_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
_installed_factory = False


def _unescape_non_ascii(text: str) -> str:
    r"""Turn ``\u53f7`` back into ``号`` so digits after it are seen as digits.

    Rasa's structlog renders events with ``json.dumps`` (ASCII escapes); the hex
    digits of an escape would otherwise hide a phone number that follows it from
    the masking patterns, which need a non-digit before the number. Only
    non-ASCII code points are unescaped, so the JSON stays valid.
    """

    def replace(match: re.Match[str]) -> str:
        code = int(match.group(1), 16)
        return chr(code) if code >= 0x80 and not 0xD800 <= code <= 0xDFFF else match.group(0)

    return _UNICODE_ESCAPE.sub(replace, text)


def _keep_first_group(match: re.Match[str]) -> str:
    # a function, not r"\1***": a template makes the regex engine import `re`, which
    # fails in records logged while the interpreter shuts down
    return match.group(1) + "***"


#: credentials that must never reach a log line, whichever library wrote it
_SECRETS = (
    # ?token=…, &api_key=… in a logged URL
    (re.compile(r"(?i)([?&](?:token|access_token|api_key|secret|signature|msg_signature)=)"
                r"[^&\s\"'#]+"), _keep_first_group),
    # a Telegram bot token (https://api.telegram.org/bot<id>:<secret>/sendMessage)
    (re.compile(r"\d{5,12}:[A-Za-z0-9_\-]{30,}"), lambda _match: "<telegram-token>"),
    # Authorization: Bearer …
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=\-]{8,}"), _keep_first_group),
)
#: libraries that log every request URL at INFO (Telegram's token is in its URLs)
QUIET_LOGGERS = ("httpx", "httpcore")


def redact_secrets(text: str) -> str:
    """Replace tokens in URLs, Telegram bot tokens and bearer tokens by ``***``."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def mask_log_text(text: str) -> str:
    """Mask phone and 身份证 numbers and redact secrets in one piece of log text."""
    if "\\u" in text:
        text = _unescape_non_ascii(text)
    return mask_text(redact_secrets(text))


def _mask_record(record: logging.LogRecord) -> None:
    """Replace the record's message by its masked, fully formatted text (once)."""
    if getattr(record, "_citizenbot_masked", False):
        return
    try:
        message = record.getMessage()
    except Exception:  # a broken format string must not lose the record
        message = f"{record.msg!r} {record.args!r}"
    record.msg = mask_log_text(message)
    record.args = None
    record._citizenbot_masked = True
    if not hasattr(record, "request_id"):
        record.request_id = request_id_var.get()


class MaskingFilter(logging.Filter):
    """A handler filter masking personal data in ``msg``/``args``; it never drops records."""

    def __init__(self, name: str = "") -> None:
        super().__init__(name)
        # Built by dictConfig in processes we do not otherwise touch (rasa_sdk):
        # mask at record creation there too.
        _install_record_factory()

    def filter(self, record: logging.LogRecord) -> bool:
        _mask_record(record)
        return True


def _service() -> str:
    return os.environ.get(ENV_SERVICE) or Path(sys.argv[0] or "python").name


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, service, request_id, message, exc."""

    def __init__(self, *args: Any, service: str | None = None, **kwargs: Any) -> None:
        super().__init__()
        self.service = service or _service()

    def format(self, record: logging.LogRecord) -> str:
        _mask_record(record)
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "service": self.service,
            "pid": record.process,
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = "".join(traceback.format_exception(*record.exc_info))
        elif record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return mask_log_text(json.dumps(entry, ensure_ascii=False, default=str))


class TextFormatter(logging.Formatter):
    """Human-readable lines for development, masked like the JSON ones."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        _mask_record(record)
        if not getattr(record, "request_id", None):
            record.request_id = request_id_var.get() or "-"
        line = super().format(record)
        # the time stays readable: its digits (2026-12-03 11…) are no phone number
        stamp = f"{getattr(record, 'asctime', '')} "
        if stamp.strip() and line.startswith(stamp):
            return stamp + mask_log_text(line[len(stamp) :])
        return mask_log_text(line)


def _install_record_factory() -> None:
    """Mask at record creation, so handlers we did not install still see masked text."""
    global _installed_factory
    if _installed_factory:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _mask_record(record)
        return record

    logging.setLogRecordFactory(factory)
    _installed_factory = True


def open_log_file(path: Path) -> IO[str]:
    """``path`` for appending, line-buffered, readable by its owner only (0600 in a 0700 dir).

    The default profile's log file (``var/log/citizenbot.log``): what the processes
    write goes there, not to the operator's terminal.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "a", buffering=1, encoding="utf-8", errors="replace")


def warnings_to(path: Path) -> None:
    """Python warnings (libraries' deprecation notices) to ``path``, not the terminal.

    For commands staff run by hand (``citizenbot ingest``): their own output stays
    on the terminal, the libraries' notices go to the log file.
    """
    try:
        handler = logging.StreamHandler(open_log_file(path))
    except OSError:
        return  # no writable var/: the terminal it is
    handler.setFormatter(TextFormatter())
    logger = logging.getLogger("py.warnings")
    logger.addHandler(handler)
    logger.propagate = False
    logging.captureWarnings(True)


def install(
    *,
    service: str | None = None,
    json_lines: bool | None = None,
    level: str | int | None = None,
    path: Path | None = None,
) -> None:
    """Make this process log masked lines to stderr (JSON when asked or in production).

    Replaces the root logger's handlers (Rasa installs coloredlogs' handler after
    reading its logging config file, so the Rasa process calls this again from
    :mod:`connectors.ops` once its channels are loaded) and masks the handlers of
    loggers that do not propagate (Sanic's). With ``path``, records go to that file
    instead, and so do Python warnings (libraries' deprecation notices): the
    terminal is left to what the operator must read.
    """
    if service:
        os.environ[ENV_SERVICE] = service
    if json_lines is None:
        json_lines = os.environ.get(ENV_JSON) == "1"
    _install_record_factory()
    handler = logging.StreamHandler(open_log_file(path) if path is not None else sys.stderr)
    if path is not None:
        logging.captureWarnings(True)
    handler.setFormatter(JsonFormatter(service=service) if json_lines else TextFormatter())
    handler.addFilter(MaskingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    if level is not None:
        root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            for other in logger.handlers:
                if not any(isinstance(f, MaskingFilter) for f in other.filters):
                    other.addFilter(MaskingFilter())
                if json_lines and isinstance(other, logging.StreamHandler):
                    other.setFormatter(JsonFormatter(service=service))


def config_dict(*, json_lines: bool, level: str = "INFO") -> dict[str, Any]:
    """The ``dictConfig`` for Rasa's and rasa_sdk's ``--logging-config-file``."""
    formatter = "JsonFormatter" if json_lines else "TextFormatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"mask": {"()": "bot.logging.MaskingFilter"}},
        "formatters": {"main": {"()": f"bot.logging.{formatter}"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "main",
                "filters": ["mask"],
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {name: {"level": "WARNING"} for name in QUIET_LOGGERS},
    }


def write_config(path: Path, *, json_lines: bool, level: str = "INFO") -> Path:
    """Write the logging config as YAML-compatible JSON (both tools read it as YAML)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config_dict(json_lines=json_lines, level=level), indent=2))
    return path
