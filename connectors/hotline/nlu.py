"""The chat channels' NLU, for transcripts: the trained Rasa model, loaded once per process.

The model is loaded in a child process of its own (one per model file, kept for the
life of the process and shared by every caller: CLI, the console's upload page,
tests). Why a process and not a thread: with the linear intent model, parsing is
Python work that holds the GIL, and so is the ingester's writing of tickets
(understanding, masking, the audit chain, duplicate search). On a thread the two
took turns and an ingest ran at half the bare parse rate; in two processes they
use both cores (docs/transcripts.md, "Performance"). The child also keeps Rasa's
and TensorFlow's imports out of the ingesting process.

:meth:`RasaNLU.submit` returns a future, so that the ingester can write one batch
to the database while the next is parsed; it may be called from any thread, also
from code running inside an event loop. Parses are done one after the other in
the child (the model is not meant for concurrent use).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import socket
import subprocess
import sys
import threading
import warnings
from collections.abc import Sequence
from concurrent.futures import Future
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

ParseData = dict[str, Any]

_loaded: dict[Path, RasaNLU] = {}
_loaded_lock = threading.Lock()


class Parser(Protocol):
    """What the ingester needs from an NLU: parse many texts, later."""

    def submit(self, texts: Sequence[str]) -> Future[list[ParseData]]: ...


class NLUFailed(RuntimeError):
    """The model could not be loaded, or a parse failed, or the NLU process died."""


def _quiet_logging() -> None:
    """Rasa logs every parse at debug level through structlog; an ingest of thousands
    of calls must not print (or pay for) that.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import structlog

    if not structlog.is_configured():
        structlog.configure(
            wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
            logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        )
    for name in ("rasa", "tensorflow", "absl", "jieba"):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)


def _load_agent(model_path: str) -> Any:
    _quiet_logging()
    with warnings.catch_warnings():
        # Rasa, TensorFlow and matplotlib warn about their own deprecations on import
        warnings.simplefilter("ignore")
        from rasa.core.agent import Agent

        from connectors.rasa_hooks import install_typed_intent_guard

        # a transcript line "/complain" is what the caller said, not an intent
        install_typed_intent_guard()
        return Agent.load(model_path)


def _serve(model_path: str, conn: Connection) -> None:
    """The NLU process: load the model, then answer ``(id, texts)`` with ``(id, parses,
    error)`` until ``None`` arrives or the parent goes away."""
    import asyncio

    try:
        agent = _load_agent(model_path)
    except BaseException as exc:  # reported to the parent, which raises
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", None))
    loop = asyncio.new_event_loop()

    async def parse_all(texts: list[str]) -> list[ParseData]:
        return [await agent.parse_message(text) for text in texts]

    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        key, texts = request
        try:
            conn.send((key, loop.run_until_complete(parse_all(texts)), None))
        except Exception as exc:  # one bad batch must not end the process
            conn.send((key, None, f"{type(exc).__name__}: {exc}"))


class RasaNLU:
    """A Rasa model parsing in its own process. Use :func:`load_nlu` to share one.

    The process is ``python -m connectors.hotline.nlu`` talking over a socket pair
    (not ``multiprocessing``'s spawn, which re-runs the caller's main script: any
    unguarded script or console entry point would load everything twice).
    """

    def __init__(self, model_path: Path) -> None:
        self.model_path = model_path
        ours, theirs = socket.socketpair()
        root = Path(__file__).resolve().parents[2]
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
        }
        log = _log_file()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "connectors.hotline.nlu", str(theirs.fileno()), str(model_path)],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # what Rasa prints must not mix with `--json` output
            # Rasa's and TensorFlow's import warnings: to the log, not the staff's terminal
            stderr=log if log is not None else None,
            cwd=root,
            env=env,
        )
        if log is not None:
            log.close()  # the child has its own descriptor
        theirs.close()  # so that recv() raises EOFError when the process dies
        self._conn = Connection(ours.detach())
        try:
            status, message = self._conn.recv()
        except EOFError:
            status, message = "failed", f"exit code {self._process.wait()}"
        if status != "ready":
            self._process.wait(timeout=5)
            self._conn.close()
            raise NLUFailed(f"cannot load {model_path}: {message}")
        self._send_lock = threading.Lock()
        self._pending: dict[int, Future[list[ParseData]]] = {}
        self._pending_lock = threading.Lock()
        self._keys = itertools.count()
        self._reader = threading.Thread(target=self._read, name="hotline-nlu-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        """Hand each answer to the future waiting for it; fail them all if the process dies."""
        while True:
            try:
                key, parses, error = self._conn.recv()
            except (EOFError, OSError):
                break
            with self._pending_lock:
                future = self._pending.pop(key, None)
            if future is None:
                continue
            if error is None:
                future.set_result(parses)
            else:
                future.set_exception(NLUFailed(error))
        with self._pending_lock:
            pending, self._pending = list(self._pending.values()), {}
        for future in pending:
            future.set_exception(NLUFailed("the NLU process ended"))

    def submit(self, texts: Sequence[str]) -> Future[list[ParseData]]:
        """Parse ``texts`` in the NLU process; the future yields one parse per text."""
        future: Future[list[ParseData]] = Future()
        key = next(self._keys)
        with self._pending_lock:
            if not self._reader.is_alive():
                future.set_exception(NLUFailed("the NLU process ended"))
                return future
            self._pending[key] = future
        try:
            with self._send_lock:
                self._conn.send((key, list(texts)))
        except (OSError, ValueError) as exc:
            with self._pending_lock:
                self._pending.pop(key, None)
            future.set_exception(NLUFailed(f"the NLU process ended: {exc}"))
        return future

    def parse(self, texts: Sequence[str]) -> list[ParseData]:
        return self.submit(texts).result()

    def close(self) -> None:
        with self._send_lock, contextlib.suppress(OSError, ValueError):
            self._conn.send(None)
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.terminate()
        self._conn.close()


def _log_file() -> Any:
    """``var/log/hotline-nlu.log`` (0600) for the NLU process's stderr, or None (inherit)."""
    try:
        from bot.logging import open_log_file
        from bot.settings import get_settings

        return open_log_file(get_settings().var_dir / "log" / "hotline-nlu.log")
    except Exception:  # no settings or no writable var/: the terminal it is
        return None


def resolve_model(model: Path | str | None = None) -> Path:
    """``model`` if given, else the model trained for the current inputs (never trains)."""
    if model is not None:
        path = Path(model).expanduser().resolve()
        if not path.is_file():
            raise FileNotFoundError(f"model file not found: {path}")
        return path
    from bot.model import ensure_model

    return ensure_model(train=False).resolve()


def load_nlu(model: Path | str | None = None) -> RasaNLU:
    """The process-wide NLU for ``model`` (default: the current model), loaded on first use."""
    path = resolve_model(model)
    with _loaded_lock:
        nlu = _loaded.get(path)
        if nlu is None:
            nlu = _loaded[path] = RasaNLU(path)
        return nlu


if __name__ == "__main__":  # the NLU process: python -m connectors.hotline.nlu FD MODEL
    _serve(sys.argv[2], Connection(int(sys.argv[1])))
