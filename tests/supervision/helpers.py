"""Logging staff into a TestClient (the console's own login form and CSRF token)."""

from __future__ import annotations

import re
from typing import Any

from starlette.testclient import TestClient

from tests.supervision.conftest import PASSWORD

CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


def login(app: Any, username: str) -> tuple[TestClient, str]:
    client = TestClient(app, base_url="http://testserver")
    token = CSRF.search(client.get("/login").text).group(1)  # type: ignore[union-attr]
    done = client.post(
        "/login",
        data={"csrf_token": token, "username": username, "password": PASSWORD},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text[:300]
    token = CSRF.search(client.get("/password").text).group(1)  # type: ignore[union-attr]
    return client, token
