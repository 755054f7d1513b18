"""Fixtures for the browser tests: one running stack, one headless Debian chromium.

The stack (``citizenbot run``, real model, action server, ticket store) is the
session's shared one: a start costs ~40 s. Each test gets a
fresh browser context — empty localStorage, so a new web chat session —
unless it opens more pages in the same context on purpose (reload, tabs).
Screenshots go to ``reports/webchat/``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from bot.settings import ROOT
from tests.browser import chromium
from tests.stack import Stack

pytest.importorskip("playwright.sync_api")

REPORTS = ROOT / "reports" / "webchat"
AXE = Path(__file__).parent / "vendor" / "axe.min.js"


@pytest.fixture(scope="package")
def web_stack(request: pytest.FixtureRequest) -> Stack:
    reuse = os.environ.get("WEBCHAT_STACK_URL")
    if reuse:  # development only: a server already running (`citizenbot run`)
        return SimpleNamespace(rasa_url=reuse.rstrip("/"))  # type: ignore[return-value]
    # The widget runs on embedded defaults, as the session stack does: sharing it
    # saves a ~40 s start. Tests use their own sessions, so they do not meet.
    return request.getfixturevalue("stack")  # type: ignore[no-any-return]


@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    with chromium() as launched:
        yield launched


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
