"""Fixtures for the browser tests: one running stack, one headless Debian chromium.

The stack (``citizenbot run``, real model, action server, ticket store) is
started once for the whole directory: a start costs ~40 s. Each test gets a
fresh browser context — empty localStorage, so a new web chat session —
unless it opens more pages in the same context on purpose (reload, tabs).
Screenshots go to ``reports/webchat/``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from bot.settings import ROOT
from tests.stack import Stack

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPORTS = ROOT / "reports" / "webchat"
AXE = Path(__file__).parent / "vendor" / "axe.min.js"


@pytest.fixture(scope="package")
def web_stack(model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    reuse = os.environ.get("WEBCHAT_STACK_URL")
    if reuse:  # development only: a server already running (`citizenbot run`)
        yield SimpleNamespace(rasa_url=reuse.rstrip("/"))  # type: ignore[misc]
        return
    stack = Stack(
        var_dir=tmp_path_factory.mktemp("webchat-stack"), model=model, extra_env={"REDIS_URL": ""}
    ).start()
    yield stack
    stack.stop()


@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


@pytest.fixture
def context(browser: object) -> Iterator[object]:
    ctx = browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": 1280, "height": 800}, locale="zh-CN"
    )
    ctx.set_default_timeout(30_000)
    yield ctx
    ctx.close()


@pytest.fixture(scope="package")
def reports() -> Path:
    REPORTS.mkdir(parents=True, exist_ok=True)
    return REPORTS
