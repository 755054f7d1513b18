"""The shared model cache: a fresh clone reuses a model trained for the same inputs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import model as models
from bot.settings import get_settings


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    directory = tmp_path / "cache"
    monkeypatch.setenv("MODEL_CACHE_DIR", str(directory))
    get_settings.cache_clear()
    yield directory
    get_settings.cache_clear()


def test_a_fresh_checkout_takes_the_cached_model(cache: Path, tmp_path: Path) -> None:
    name = models.model_path(tmp_path).name
    cache.mkdir()
    (cache / name).write_bytes(b"trained elsewhere")
    checkout_models = tmp_path / "clone" / "models"

    # train=False: it must come from the cache, never from a training run
    path = models.ensure_model(train=False, model_dir=checkout_models)

    assert path == checkout_models / name
    assert path.read_bytes() == b"trained elsewhere"
    assert not list(checkout_models.glob(".*.part"))


def test_a_model_for_other_inputs_is_not_taken(cache: Path, tmp_path: Path) -> None:
    cache.mkdir()
    (cache / "citizenbot-000000000000.tar.gz").write_bytes(b"other inputs")

    with pytest.raises(FileNotFoundError, match="no model for the current inputs"):
        models.ensure_model(train=False, model_dir=tmp_path / "models")


def test_the_cache_keeps_the_most_recently_used(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    for i in range(8):
        trained = tmp_path / f"citizenbot-{i:012d}.tar.gz"
        trained.write_bytes(str(i).encode())
        models.store_cached(trained, cache, keep=3)
        stored = cache / trained.name
        os.utime(stored, (1_000_000 + i, 1_000_000 + i))

    kept = sorted(p.name for p in cache.iterdir())
    assert kept == [f"citizenbot-{i:012d}.tar.gz" for i in (5, 6, 7)]
    assert (cache / "citizenbot-000000000007.tar.gz").read_bytes() == b"7"


def test_off_turns_the_cache_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_CACHE_DIR", "off")
    get_settings.cache_clear()
    try:
        assert models.cache_dir() is None
    finally:
        get_settings.cache_clear()
