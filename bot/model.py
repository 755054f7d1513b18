"""The trained Rasa model: which inputs it depends on, and training it only when they change.

A model is named after a hash of everything that shapes it (pipeline config,
domain, NLU/core training data, routing data, our NLU component code, the Rasa
version), so ``make run`` and the test suite reuse ``models/`` until one of
those inputs changes, and never run a model trained from other data.
"""

from __future__ import annotations

import fcntl
import hashlib
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


def ensure_model(*, train: bool = True, model_dir: Path | None = None) -> Path:
    """Return the model for the current inputs, training it first when it is missing.

    A file lock makes concurrent callers (two test sessions, ``make run`` beside
    ``make test``) train once and share the result.
    """
    directory = model_dir or get_settings().model_dir
    target = model_path(directory)
    if target.exists():
        return target
    if not train:
        raise FileNotFoundError(f"no model for the current inputs: {target.name}")
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".train.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.exists():
            _train(target)
    return target


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
    print(f"training the model, about 5 minutes; log: {log_path}", file=sys.stderr, flush=True)
    with open(log_path, "w") as log:
        result = subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"rasa train failed (exit {result.returncode}):\n{tail}")
    if not target.exists():
        raise RuntimeError(f"rasa train finished but {target} is missing")
