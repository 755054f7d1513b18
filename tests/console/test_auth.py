"""Login, one-time passwords, sessions, CSRF and API tokens (Starlette TestClient)."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from bot.console.accounts import Accounts
from tests.console.conftest import CSRF, ENV, PASSWORD, Staff, dispatched, login


def test_passwords_are_stored_as_argon2_hashes(accounts: Accounts, users: dict) -> None:
    with accounts.engine.connect() as conn:
        hashes = [row[0] for row in conn.exec_driver_sql("SELECT password_hash FROM console_users")]
    assert hashes and all(h.startswith("$argon2id$") for h in hashes)
    assert all(PASSWORD not in h for h in hashes)


def test_login_with_a_wrong_password_is_refused(app: Any, users: dict) -> None:
    staff = Staff(TestClient(app), "disp")
    staff.refresh_csrf("/login")
    response = staff.post_form("/login", username="disp", password="wrong-password!")
    assert response.status_code == 401
    assert "用户名或密码错误" in response.text
    assert staff.client.get("/api/me").status_code == 401
    unknown = staff.post_form("/login", username="nobody", password="whatever-password")
    assert unknown.status_code == 401


def test_pages_need_a_login(app: Any) -> None:
    client = TestClient(app)
    response = client.get("/queue/department", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    assert client.get("/api/tickets").status_code == 401
    assert client.get("/healthz").json() == {"status": "ok"}


def test_login_form_without_csrf_token_is_refused(app: Any, users: dict) -> None:
    client = TestClient(app)
    client.get("/login")
    response = client.post("/login", data={"username": "disp", "password": PASSWORD})
    assert response.status_code == 403
    assert client.get("/api/me").status_code == 401


def test_login_does_not_redirect_to_another_site(app: Any, users: dict) -> None:
    staff = Staff(TestClient(app), "disp")
    staff.refresh_csrf("/login")
    response = staff.post_form("/login", username="disp", password=PASSWORD, next="//evil.example")
    assert response.headers["location"] == "/"


def test_first_admin_gets_a_one_time_password_that_must_be_changed(
    app: Any, accounts: Accounts
) -> None:
    password = accounts.ensure_first_admin()
    assert password and accounts.ensure_first_admin() is None  # printed once only
    admin = Staff(TestClient(app), "admin")
    admin.refresh_csrf("/login")
    response = admin.post_form("/login", username="admin", password=password)
    assert response.headers["location"] == "/password"
    # nothing else is allowed before the change
    page = admin.client.get("/queue/dispatch", follow_redirects=False)
    assert page.headers["location"] == "/password"
    api = admin.api("GET", "/api/tickets")
    assert api.status_code == 403 and api.json()["error"] == "password_change_required"
    admin.refresh_csrf("/password")
    same = admin.post_form(
        "/password", old_password=password, new_password=password, new_password_again=password
    )
    assert same.status_code == 422
    short = admin.post_form(
        "/password", old_password=password, new_password="short", new_password_again="short"
    )
    assert short.status_code == 422
    done = admin.post_form(
        "/password",
        old_password=password,
        new_password="new-admin-password",
        new_password_again="new-admin-password",
    )
    assert done.status_code == 303
    assert admin.client.get("/queue/dispatch").status_code == 200
    assert accounts.authenticate("admin", password) is None
    assert accounts.authenticate("admin", "new-admin-password") is not None


def test_reset_and_disable_end_existing_sessions(
    app: Any, accounts: Accounts, as_user: Any
) -> None:
    staff = as_user("env1")
    assert staff.client.get("/api/me").status_code == 200
    accounts.reset_password("env1")
    assert staff.client.get("/api/me").status_code == 401
    other = as_user("disp")
    accounts.set_disabled("disp")
    assert other.client.get("/api/me").status_code == 401
    again = Staff(TestClient(app), "disp")
    again.refresh_csrf("/login")
    assert again.post_form("/login", username="disp", password=PASSWORD).status_code == 401


def test_logout_ends_the_session(as_user: Any) -> None:
    staff = as_user("disp")
    assert staff.post_form("/logout").status_code == 303
    assert staff.client.get("/api/me").status_code == 401


def test_forms_and_api_calls_without_the_csrf_token_change_nothing(
    as_user: Any, store: Any
) -> None:
    view = dispatched(store)
    staff = as_user("env1")
    url = f"/tickets/{view.number}/do/reply"
    missing = staff.client.post(url, data={"text": "答复", "expected_version": view.version})
    wrong = staff.client.post(url, data={"text": "答复", "csrf_token": "forged"})
    api = staff.client.post(
        f"/api/tickets/{view.number}/actions/reply",
        json={"text": "答复"},
        headers={"Accept": "application/json"},
    )
    assert missing.status_code == wrong.status_code == api.status_code == 403
    assert api.json()["error"] == "csrf"
    assert store.get(view.number).version == view.version
    ok = staff.post_form(url, text="已处理", expected_version=view.version)
    assert ok.status_code == 303
    assert store.get(view.number).status.value == "replied"


def test_csrf_token_is_per_session(as_user: Any, store: Any) -> None:
    view = dispatched(store)
    one, two = as_user("env1"), as_user("env1")
    assert one.csrf != two.csrf
    response = one.client.post(
        f"/tickets/{view.number}/do/note", data={"text": "备注", "csrf_token": two.csrf}
    )
    assert response.status_code == 403


def test_api_tokens_work_without_cookies_and_can_be_revoked(
    app: Any, accounts: Accounts, users: dict, store: Any
) -> None:
    view = dispatched(store)
    token = accounts.create_token("env1", "robot")
    client = TestClient(app)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/me", headers=headers).json()["username"] == "env1"
    # bearer requests carry no cookie authority: no CSRF token needed
    response = client.post(
        f"/api/tickets/{view.number}/actions/note", json={"text": "机器备注"}, headers=headers
    )
    assert response.status_code == 200, response.text
    assert client.get("/api/me", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/api/me", headers={"Authorization": "Basic eDp5"}).status_code == 401
    accounts.revoke_tokens("env1")
    assert client.get("/api/me", headers=headers).status_code == 401


def test_disabling_a_user_revokes_their_tokens(app: Any, accounts: Accounts, users: dict) -> None:
    token = accounts.create_token("disp")
    accounts.set_disabled("disp")
    response = TestClient(app).get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_security_headers(app: Any) -> None:
    response = TestClient(app).get("/login")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert CSRF.search(response.text)
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie


def test_admin_manages_users_in_the_page(as_user: Any, accounts: Accounts) -> None:
    admin = as_user("root")
    created = admin.post_form("/users", username="env2", role="department", department=ENV)
    assert created.status_code == 200 and "one-time-password" in created.text
    assert accounts.by_name("env2").must_change_password  # type: ignore[union-attr]
    missing_department = admin.post_form("/users", username="env3", role="department")
    assert missing_department.status_code == 422
    assert admin.post_form("/users/env2/disable").status_code == 303
    assert accounts.by_name("env2").disabled  # type: ignore[union-attr]
    assert admin.post_form("/users/ghost/disable").status_code == 404
    assert admin.post_form("/users/root/disable").status_code == 422
    assert as_user("disp").client.get("/users").status_code == 403


def test_login_helper_keeps_the_session(as_user: Any) -> None:
    staff = login(as_user("disp").client.app, "disp")  # a second, independent session
    assert staff.client.get("/api/me").json()["role"] == "dispatcher"
