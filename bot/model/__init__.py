"""The trained Rasa model: which inputs it depends on, and training it only when they change.

A model is named after a hash of everything that shapes it (pipeline config,
domain, NLU/core training data, routing data, our NLU component code, the Rasa
version), so ``make run`` and the test suite reuse ``models/`` until one of
those inputs changes, and never run a model trained from other data.

Training takes about a minute, so a trained model is also kept in ``MODEL_CACHE_DIR``
(outside the checkout, shared by every clone on the machine, keyed by the same
hash): a fresh clone or a CI run on unchanged inputs copies it instead of training.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from bot.settings import ROOT, get_settings

CONFIG = ROOT / "config.yml"
DOMAIN = ROOT / "bot" / "domain"
#: Rasa training data (``--data``); knowledge-base and ticket data are read at run time instead.
TRAINING_DATA = (ROOT / "data" / "nlu", ROOT / "data" / "rules.yml", ROOT / "data" / "stories.yml")
#: Further inputs that change what the model does.
OTHER_INPUTS = (ROOT / "data" / "routing", ROOT / "nlu")
#: files under those folders that do not change the model (CLI glue, docs)
SKIP = frozenset({"commands.py", "README.md", "SOURCE.md"})
#: models kept in the shared cache (~50 MB each); the least recently used go first
CACHE_KEEP = 6


def _files(paths: tuple[Path, ...]) -> Iterator[Path]:
    for path in paths:
        if path.is_file():
            yield path
        elif path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and "__pycache__" not in child.parts and child.name not in SKIP:
                    yield child


def fingerprint() -> str:
    """Short hash of every model input, stable across machines and checkouts."""
    import rasa

    digest = hashlib.sha256(f"rasa {rasa.__version__}\n".encode())
    for path in _files((CONFIG, DOMAIN, *TRAINING_DATA, *OTHER_INPUTS)):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def model_path(model_dir: Path | None = None) -> Path:
    directory = model_dir or get_settings().model_dir
    return directory / f"citizenbot-{fingerprint()}.tar.gz"


def is_fresh(model_dir: Path | None = None) -> bool:
    return model_path(model_dir).exists()


def ensure_model(
    *, train: bool = True, model_dir: Path | None = None, use_cache: bool = True
) -> Path:
    """Return the model for the current inputs, training it first when it is missing.

    A file lock makes concurrent callers (two test sessions, ``make run`` beside
    ``make test``) train once and share the result. ``use_cache=False`` trains
    anew even when the shared cache holds a model (``citizenbot train --force``);
    the new model still replaces the cached one.
    """
    directory = model_dir or get_settings().model_dir
    target = model_path(directory)
    cache = cache_dir()
    reuse = cache if use_cache else None
    # fetching needs no lock: the copy appears under its name only when complete
    if target.exists() or (reuse is not None and fetch_cached(target, reuse)):
        return target
    if not train:
        raise FileNotFoundError(f"no model for the current inputs: {target.name}")
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".train.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists() or (reuse is not None and fetch_cached(target, reuse)):
            return target
        _train(target)
        if cache is not None:
            store_cached(target, cache)
    return target


def cache_dir() -> Path | None:
    """The shared model cache, or None when ``MODEL_CACHE_DIR`` is ``off``."""
    configured = get_settings().model_cache_dir.strip()
    return None if configured.lower() in ("", "off") else Path(configured).expanduser()


def _copy_atomically(source: Path, target: Path) -> None:
    """Copy under a temporary name, then rename: a reader never sees half a model."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        shutil.copyfile(source, partial)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def fetch_cached(target: Path, cache: Path) -> bool:
    """Copy the cached model named like ``target`` into place; False when there is none."""
    cached = cache / target.name
    if not cached.is_file():
        return False
    try:
        _copy_atomically(cached, target)
        os.utime(cached)  # recently used: kept longest
    except OSError as exc:  # an unreadable cache only costs a training run
        print(f"model cache not usable ({exc}); training instead", file=sys.stderr)
        return False
    print(f"using the cached model {cached}", file=sys.stderr, flush=True)
    return True


def store_cached(model: Path, cache: Path, keep: int = CACHE_KEEP) -> None:
    """Put a freshly trained model into the cache and drop the least recently used."""
    try:
        _copy_atomically(model, cache / model.name)
        models = sorted(cache.glob("citizenbot-*.tar.gz"), key=lambda p: p.stat().st_mtime)
        for old in models[:-keep]:
            old.unlink(missing_ok=True)
    except OSError as exc:  # a full or read-only cache must not fail the training run
        print(f"could not cache the model in {cache}: {exc}", file=sys.stderr)


def _train(target: Path) -> None:
    rasa = Path(sys.executable).with_name("rasa")
    command = [
        str(rasa),
        "train",
        "--config",
        str(CONFIG),
        "--domain",
        str(DOMAIN),
        "--data",
        *(str(p) for p in TRAINING_DATA if p.exists()),
        "--out",
        str(target.parent),
        "--fixed-model-name",
        target.name.removesuffix(".tar.gz"),
    ]
    log_path = target.parent / "train.log"
    print(
        f"training the model (about a minute on 2 cores); log: {log_path}",
        file=sys.stderr,
        flush=True,
    )
    # no telemetry: a model is trained offline, and a failed run must not wait on
    # Rasa's error reporter retrying an unreachable server
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false"}
    with open(log_path, "w") as log:
        result = subprocess.run(
            command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env
        )
    if result.returncode != 0:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"rasa train failed (exit {result.returncode}):\n{tail}")
    if not target.exists():
        raise RuntimeError(f"rasa train finished but {target} is missing")
