"""Fixtures: one loaded NLU per session (~25 s), a fresh SQLite ticket store per test.

Transcript files are written by the tests themselves (``write_jsonl`` /
``write_text``), in the encodings call systems really export.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from bot.privacy import is_valid_id_number
from bot.settings import load_settings
from bot.tickets.store import TicketStore

ROOT = Path(__file__).resolve().parents[2]
CITIZENBOT = ROOT / ".venv" / "bin" / "citizenbot"


def valid_id_number(base17: str = "11010519900307123") -> str:
    """A 身份证 number with a correct check digit (the extractor validates it)."""
    for check in "0123456789X":
        if is_valid_id_number(base17 + check):
            return base17 + check
    raise AssertionError("unreachable")


def call(call_id: str, *turns: tuple[str, str], **fields: Any) -> dict[str, Any]:
    """A JSON-format call; turns are (speaker, text)."""
    data: dict[str, Any] = {
        "call_id": call_id,
        "started_at": "2026-11-27T09:15:00+08:00",
        "turns": [{"speaker": s, "text": t} for s, t in turns],
    }
    data.update(fields)
    return data


def write_jsonl(
    path: Path, rows: list[dict[str, Any] | str], encoding: str = "utf-8", bom: bool = False
) -> Path:
    """One JSON object (or a raw string: a broken line) per line."""
    text = "".join(
        (r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows
    )
    data = text.encode(encoding)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


def write_text(path: Path, text: str, encoding: str = "utf-8", bom: bool = False) -> Path:
    data = text.encode(encoding)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


@pytest.fixture(scope="session")
def nlu(model: Path):  # type: ignore[no-untyped-def]
    """The real model, loaded once for the session (what the ingester shares per process)."""
    from connectors.hotline.nlu import load_nlu

    return load_nlu(model)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """Environment of an ingesting process: its own var dir, database and key."""
    return {
        "VAR_DIR": str(tmp_path / "var"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'var' / 'tickets.db'}",
        "PII_KEY": Fernet.generate_key().decode(),
        "TIMEZONE": "Asia/Shanghai",
        "TICKET_PREFIX": "GD",
        "ROUTING_THRESHOLD": "0.6",
    }


@pytest.fixture
def store(env: dict[str, str]) -> Iterator[TicketStore]:
    store = TicketStore(env["DATABASE_URL"], settings=load_settings(env))
    yield store
    store.dispose()
