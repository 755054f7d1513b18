"""The floor: ``shared/bench/minimal-bot`` trained and served in the same run as citizenbot."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bot.settings import ROOT

SOURCE = Path(os.environ.get("MINIMAL_BOT_DIR", ROOT.parent / "shared" / "bench" / "minimal-bot"))
CACHE = ROOT / "models" / "bench"


def train() -> Path:
    files = sorted(p for p in SOURCE.rglob("*.yml"))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()[:12]
    target = CACHE / f"minimal-{digest}.tar.gz"
    if not target.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                str(Path(sys.executable).with_name("rasa")),
                "train",
                "--config",
                str(SOURCE / "config.yml"),
                "--domain",
                str(SOURCE / "domain.yml"),
                "--data",
                str(SOURCE / "data"),
                "--out",
                str(CACHE),
                "--fixed-model-name",
                target.name.removesuffix(".tar.gz"),
            ],
            check=True,
            cwd=SOURCE,
            stdout=subprocess.DEVNULL,
        )
    return target


def start(port: int) -> subprocess.Popen[bytes]:
    model = train()
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("rasa")),
            "run",
            "--model",
            str(model),
            "--credentials",
            str(SOURCE / "credentials.yml"),
            "--port",
            str(port),
            "--interface",
            "127.0.0.1",
        ],
        cwd=SOURCE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        try:
            if (
                httpx.post(
                    f"http://127.0.0.1:{port}/webhooks/rest/webhook",
                    json={"sender": "warm", "message": "你好"},
                    timeout=5,
                ).status_code
                == 200
            ):
                return process
        except httpx.HTTPError:
            pass
        time.sleep(1)
    process.kill()
    raise RuntimeError("minimal bot did not start")
