"""The chat channels' NLU, for transcripts: the trained Rasa model, loaded once per process.

Loading takes ~25 s (TensorFlow), so one :class:`RasaNLU` per model file is kept
for the life of the process and shared by every caller (CLI, the console's
upload page, tests). It owns one event loop on one daemon thread: Rasa's
``Agent.parse_message`` is a coroutine, and a private loop makes it callable
from any thread, also from code that runs inside another event loop. Parses
are serialised on that thread (the model is not meant for concurrent use, and
two cores gain nothing from it), and :meth:`RasaNLU.submit` returns a future so
that the ingester can write one batch to the database while the next is parsed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import warnings
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Protocol

ParseData = dict[str, Any]

_loaded: dict[Path, RasaNLU] = {}
_loaded_lock = threading.Lock()


class Parser(Protocol):
    """What the ingester needs from an NLU: parse many texts, later."""

    def submit(self, texts: Sequence[str]) -> Future[list[ParseData]]: ...


def _quiet_logging() -> None:
    """Rasa logs every parse at debug level through structlog; an ingest of thousands
    of calls must not print (or pay for) that. Leaves a configuration alone if the
    process (a Rasa server, the console) already made one.
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


class RasaNLU:
    """A loaded Rasa model parsing on its own thread. Use :func:`load_nlu` to share one."""

    def __init__(self, model_path: Path) -> None:
        self.model_path = model_path
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="hotline-nlu", daemon=True
        )
        self._thread.start()
        self._agent: Any = asyncio.run_coroutine_threadsafe(self._load(), self._loop).result()

    async def _load(self) -> Any:
        _quiet_logging()
        with warnings.catch_warnings():
            # Rasa, TensorFlow and matplotlib warn about their own deprecations on import
            warnings.simplefilter("ignore")
            from rasa.core.agent import Agent

            from connectors.ops import install_typed_intent_guard

            # a transcript line "/complain" is what the caller said, not an intent
            install_typed_intent_guard()
            return Agent.load(str(self.model_path))

    async def _parse_all(self, texts: Sequence[str]) -> list[ParseData]:
        return [await self._agent.parse_message(text) for text in texts]

    def submit(self, texts: Sequence[str]) -> Future[list[ParseData]]:
        """Parse ``texts`` on the NLU thread; the future yields one parse per text."""
        return asyncio.run_coroutine_threadsafe(self._parse_all(list(texts)), self._loop)

    def parse(self, texts: Sequence[str]) -> list[ParseData]:
        return self.submit(texts).result()

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


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
