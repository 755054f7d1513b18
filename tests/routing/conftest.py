"""A small seeded sample of the routing data, so each test trains in seconds."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path

import pytest

from nlu.routing import Router, read_jsonl

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = ROOT / "data" / "routing" / "messages.jsonl"
PER_CLASS = 50


@pytest.fixture(scope="session")
def sample_rows() -> list[dict]:
    """``PER_CLASS`` messages of each category, the same ones on every run."""
    by_label: dict[str, list[dict]] = defaultdict(list)
    for row in read_jsonl(MESSAGES):
        by_label[row["label"]].append(row)
    rng = random.Random(7)
    rows = [row for label in sorted(by_label) for row in rng.sample(by_label[label], PER_CLASS)]
    rng.shuffle(rows)
    return rows


@pytest.fixture(scope="session")
def sample_file(sample_rows: list[dict], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("routing") / "sample.jsonl"
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in sample_rows), encoding="utf-8"
    )
    return path


@pytest.fixture(scope="session")
def trained_router(sample_rows: list[dict]) -> Router:
    return Router().fit([r["text"] for r in sample_rows], [r["label"] for r in sample_rows])


@pytest.fixture(scope="session")
def router_dir(trained_router: Router, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained_router.save(tmp_path_factory.mktemp("router") / "router")
