"""Debian's chromium for the browser tests (never a downloaded browser): one way to start it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

#: headless in a container: no sandbox, GPU or background traffic
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def chromium() -> Iterator[Any]:
    """A launched chromium; fails (not skips) where it is missing: CI installs it."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("chromium is not installed (apt-get install -y chromium fonts-wqy-microhei)")
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=executable, headless=True, args=ARGS)
        try:
            yield instance
        finally:
            instance.close()


def wait_until(page: Any, condition: str, timeout: float = 30_000) -> None:
    """Wait until the JavaScript expression ``condition`` is true on ``page``.

    Playwright evaluates a bare expression string anew on every poll, and from the second
    poll on that is an ``eval`` the pages' ``script-src 'self'`` forbids: the wait then
    fails only when the condition was not already true. A function is compiled once.
    """
    page.wait_for_function(f"() => ({condition})", timeout=timeout)
