"""Roles, the department boundary, pagination, bad input and notifications (TestClient).

Every refusal must be a clear 4xx *and* leave the ticket unchanged: each test
compares the ticket's version before and after.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from bot.console.app import create_app
from bot.settings import Settings, load_settings
from bot.tickets import Actor, Role, TicketStore
from tests.console.conftest import ENV, HOUSING, dispatched, login, new_ticket

INJECTIONS = [
    "' OR 1=1 --",
    "%' ; DROP TABLE tickets; --",
    '" OR ""="',
    "GD20261127-0001' UNION SELECT * FROM console_users --",
    "\\%_",
]


def test_department_staff_see_only_their_department(as_user: Any, store: TicketStore) -> None:
    mine = dispatched(store, ENV)
    theirs = dispatched(store, HOUSING, summary="楼道墙皮脱落")
    staff = as_user("env1")
    listed = staff.api("GET", "/api/tickets?status=all").json()
    assert [t["number"] for t in listed["items"]] == [mine.number]
    assert staff.api("GET", f"/api/tickets/{theirs.number}").status_code == 404
    assert staff.client.get(f"/tickets/{theirs.number}").status_code == 404
    assert staff.api("GET", f"/api/tickets?department={HOUSING}").status_code == 403
    page = staff.client.get("/queue/department?status=all")
    assert mine.number in page.text and theirs.number not in page.text
    for action, body in (
        ("reply", {"text": "越权"}),
        ("note", {"text": "越权"}),
        ("start", {}),
        ("return", {"reason": "越权"}),
    ):
        refused = staff.api("POST", f"/api/tickets/{theirs.number}/actions/{action}", json=body)
        assert refused.status_code == 404, (action, refused.text)
    form = staff.post_form(f"/tickets/{theirs.number}/do/reply", text="越权")
    assert form.status_code == 404
    contact = staff.api("POST", f"/api/tickets/{theirs.number}/contact")
    assert contact.status_code == 404
    assert store.get(theirs.number).version == theirs.version
    assert not any(e["action"] == "contact_viewed" for e in store.history(theirs.number))


def test_department_staff_get_no_centre_pages(as_user: Any) -> None:
    staff = as_user("env1")
    assert staff.client.get("/queue/dispatch").status_code == 403
    assert staff.api("GET", "/api/tickets?queue=dispatch").status_code == 403
    assert staff.client.get("/users").status_code == 403
    assert staff.client.get("/hotline/upload").status_code == 403
    assert staff.client.get("/", follow_redirects=False).headers["location"] == "/queue/department"


def test_buttons_follow_the_role(as_user: Any, store: TicketStore) -> None:
    view = dispatched(store, ENV)
    staff_page = as_user("env1").client.get(f"/tickets/{view.number}").text
    assert "/do/reply" in staff_page and "/do/start" in staff_page
    for centre_only in ("/do/transfer", "/do/merge", "/do/escalate", "/do/dispatch"):
        assert centre_only not in staff_page
    boss_page = as_user("boss").client.get(f"/tickets/{view.number}").text
    assert "/do/escalate" in boss_page and "/do/transfer" in boss_page
    detail = as_user("env1").api("GET", f"/api/tickets/{view.number}").json()
    assert "dispatch" not in detail["actions"] and "reply" in detail["actions"]


def test_dispatcher_queue_shows_suggestion_and_duplicates(as_user: Any, store: TicketStore) -> None:
    first = new_ticket(store, category="环境保护", category_confidence=0.3)
    second = new_ticket(store, category="环境保护", category_confidence=0.3, sender_id="other")
    disp = as_user("disp")
    page = disp.client.get("/queue/dispatch").text
    assert first.number in page and second.number in page
    assert "低置信度" in page and "市生态环境局" in page and "置信度 30%" in page
    rows = disp.api("GET", "/api/tickets?queue=dispatch").json()["items"]
    row = next(r for r in rows if r["number"] == second.number)
    assert row["low_confidence"] and row["suggested_department"] == ENV
    assert first.number in row["probable_duplicates"]
    assert f'value="{first.number}"' in page  # merge button into the probable duplicate
    merged = disp.api(
        "POST",
        f"/api/tickets/{second.number}/actions/merge",
        json={"into": first.number, "expected_version": store.get(second.number).version},
    )
    assert merged.status_code == 200 and merged.json()["status"] == "merged"
    done = disp.api(
        "POST",
        f"/api/tickets/{first.number}/actions/dispatch",
        json={"department": ENV, "expected_version": store.get(first.number).version},
    )
    assert done.status_code == 200 and done.json()["department"] == ENV


def test_pagination(as_user: Any, store: TicketStore) -> None:
    for i in range(23):
        dispatched(store, ENV, summary=f"第{i}号投诉：路面破损")
    staff = as_user("env1")
    first = staff.api("GET", "/api/tickets?per_page=10").json()
    assert first["total"] == 23 and first["pages"] == 3 and len(first["items"]) == 10
    last = staff.api("GET", "/api/tickets?per_page=10&page=3").json()
    assert len(last["items"]) == 3
    beyond = staff.api("GET", "/api/tickets?per_page=10&page=9").json()
    assert beyond["items"] == [] and beyond["total"] == 23
    numbers = set()
    for page in (1, 2, 3):
        items = staff.api("GET", f"/api/tickets?per_page=10&page={page}").json()["items"]
        numbers.update(t["number"] for t in items)
    assert len(numbers) == 23
    deadlines = [t["deadline"] for t in first["items"]]
    assert deadlines == sorted(deadlines)
    html = staff.client.get("/queue/department?per_page=10&page=2").text
    assert "第 2/3 页" in html and "page=3" in html


@pytest.mark.parametrize(
    "query",
    [
        "page=0",
        "page=-1",
        "page=abc",
        "per_page=0",
        "per_page=1000",
        "status=nonsense",
        "queue=secret",
        "date_from=2026-13-45",
        "date_to=yesterday",
        "q=" + "长" * 500,
        "place=" + "x" * 101,
    ],
)
def test_bad_list_parameters_are_a_clear_400(as_user: Any, query: str) -> None:
    response = as_user("env1").api("GET", f"/api/tickets?{query}")
    assert response.status_code == 400
    assert response.json()["error"] == "bad_param"
    page = as_user("env1").client.get(f"/queue/department?{query}")
    assert page.status_code == 400 and "查询条件有误" in page.text


@pytest.mark.parametrize("query", INJECTIONS)
def test_sql_injection_in_search_is_just_text(as_user: Any, store: TicketStore, query: str) -> None:
    view = dispatched(store, ENV)
    staff = as_user("env1")
    response = staff.client.get("/api/tickets", params={"q": query, "status": "all"})
    assert response.status_code == 200
    assert response.json()["items"] == []
    assert staff.client.get("/queue/department", params={"q": query}).status_code == 200
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM tickets")).scalar() == 1
        assert conn.execute(text("SELECT count(*) FROM console_users")).scalar() == 5
    assert store.get(view.number).version == view.version


def test_search_filters_by_number_text_place_and_date(as_user: Any, store: TicketStore) -> None:
    a = dispatched(store, ENV, summary="垃圾站臭味", place="东湖路")
    dispatched(store, ENV, summary="工地噪音", place="西山街")
    staff = as_user("env1")

    def numbers(**params: str) -> list[str]:
        items = staff.client.get("/api/tickets", params=params).json()["items"]
        return [t["number"] for t in items]

    assert numbers(q="臭味") == [a.number]
    assert numbers(q=a.number.lower()) == [a.number]
    assert numbers(place="东湖") == [a.number]
    today = a.created_at.date().isoformat()
    assert len(numbers(date_from=today, date_to=today)) == 2
    assert numbers(date_to="2000-01-01") == []


@pytest.mark.parametrize(
    "number", ["NOTATICKET", "GD20200101-9999", "1' OR '1'='1", "x" * 300, "%00"]
)
def test_wrong_ticket_numbers_are_404(as_user: Any, number: str) -> None:
    staff = as_user("disp")
    response = staff.api("GET", f"/api/tickets/{number}")
    assert response.status_code == 404
    assert response.json()["error"] in ("bad_number", "not_found")
    action = staff.api("POST", f"/api/tickets/{number}/actions/note", json={"text": "x"})
    assert action.status_code == 404


def test_bad_action_input_changes_nothing(as_user: Any, store: TicketStore) -> None:
    view = dispatched(store, ENV)
    staff = as_user("env1")
    url = f"/api/tickets/{view.number}/actions"
    cases = [
        ("reply", {"text": "答" * 6000}, 422, "too_long"),
        ("reply", {"text": "   "}, 422, "invalid"),
        ("reply", {"text": "好", "expected_version": "abc"}, 422, "bad_version"),
        ("reply", {"text": "好", "expected_version": view.version + 5}, 409, "conflict"),
        ("pause", {"reason": ""}, 422, "invalid"),
        ("fly", {}, 404, "unknown_action"),
        ("dispatch", {"department": ENV}, 403, "forbidden"),  # rights before state
        ("close", {"reason": "x"}, 403, "forbidden"),  # not a department's action
    ]
    for action, body, status, code in cases:
        response = staff.api("POST", f"{url}/{action}", json=body)
        assert response.status_code == status, (action, body, response.text)
        assert response.json()["error"] == code
        assert response.json()["message"]  # a text people can read
    again = as_user("disp").api("POST", f"{url}/dispatch", json={"department": ENV})
    assert again.status_code == 409 and again.json()["error"] == "illegal"  # already dispatched
    bad_json = staff.api(
        "POST", f"{url}/note", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert bad_json.status_code == 400
    array = staff.api("POST", f"{url}/note", json=["a"])
    assert array.status_code == 400
    huge = staff.api("POST", f"{url}/note", json={"text": "x" * 2_000_000})
    assert huge.status_code == 413
    assert store.get(view.number).version == view.version


def test_stale_form_gets_a_clear_conflict(as_user: Any, store: TicketStore) -> None:
    view = dispatched(store, ENV)
    staff = as_user("env1")
    store.add_note(view.number, "同事刚加的备注", Actor(Role.DEPARTMENT, "env9", ENV))
    response = staff.post_form(
        f"/tickets/{view.number}/do/reply", text="旧表单的答复", expected_version=view.version
    )
    assert response.status_code == 409
    assert "工单已被他人修改" in response.text
    assert store.get(view.number).reply is None


def test_html_from_citizens_is_escaped(as_user: Any, store: TicketStore) -> None:
    payload = "<script>alert(1)</script><img src=x onerror=alert(1)>"
    view = new_ticket(store, summary=payload, place=payload, transcript=[{"text": payload}])
    page = as_user("disp").client.get(f"/tickets/{view.number}").text
    assert "<script>alert(1)" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


class FakeRasa:
    """Records trigger_intent calls the way Rasa receives them; answers 200 or 500.

    A 200 carries ``messages`` only when ``collected`` is set: that is how Rasa
    answers when the requested output channel is not running (it collects the
    bot's messages into its answer instead of delivering them).
    """

    def __init__(self, status: int = 200) -> None:
        self.calls: list[dict[str, Any]] = []
        self.status = status
        self.collected = False
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's naming
                length = int(self.headers.get("content-length", 0))
                fake.calls.append({"path": self.path, "body": json.loads(self.rfile.read(length)),
                                   "authorization": self.headers.get("authorization", "")})
                self.send_response(fake.status)
                self.send_header("content-type", "application/json")
                self.end_headers()
                body = {"tracker": {}, **({"messages": [{"text": "…"}]} if fake.collected else {})}
                self.wfile.write(json.dumps(body).encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def rasa() -> Iterator[FakeRasa]:
    fake = FakeRasa()
    yield fake
    fake.server.shutdown()


@pytest.fixture
def notifying(settings: Settings, rasa: FakeRasa, store: TicketStore, users: dict) -> Any:
    """The console with RASA_URL pointing at the fake Rasa (same database, same users)."""
    env = {
        "VAR_DIR": str(settings.var_dir),
        "PII_KEY": settings.pii_key,
        "RASA_TOKEN": "test-token",
        "RASA_URL": rasa.url,
    }
    return create_app(load_settings(env), store)


def test_reply_notifies_the_citizen_through_rasa(
    notifying: Any, rasa: FakeRasa, store: TicketStore
) -> None:
    view = dispatched(store, ENV, channel="wechat", sender_id="wechat:o6_bmjrPTlm6_2sgVt7hMZOPfL2M")
    staff = login(notifying, "env1")
    response = staff.api(
        "POST",
        f"/api/tickets/{view.number}/actions/reply",
        json={"text": "已处理", "expected_version": view.version},
    )
    assert response.status_code == 200 and response.json()["notification_scheduled"]
    assert len(rasa.calls) == 1
    call = rasa.calls[0]
    assert call["path"].startswith(
        "/conversations/wechat:o6_bmjrPTlm6_2sgVt7hMZOPfL2M/trigger_intent?"
    )
    # the owner's own channel, never "latest": a stranger who spoke last cannot take it
    assert call["path"].endswith("?output_channel=wechat")
    # credentials in a header (a short-lived admin JWT), never in the URL
    assert "token" not in call["path"] and call["authorization"].startswith("Bearer ")
    claims = jwt.decode(call["authorization"][7:], settings_of(notifying).effective_rasa_jwt_secret,
                        algorithms=["HS256"])
    assert claims["user"]["role"] == "admin" and claims["exp"] > 0
    assert call["body"] == {
        "name": "EXTERNAL_ticket_update",
        "entities": {"ticket_number": view.number},
    }
    detail = staff.api("GET", f"/api/tickets/{view.number}").json()
    assert detail["notification"]["status"] == "sent"


def test_reply_to_a_channel_that_is_not_running_is_failed_not_sent(
    notifying: Any, rasa: FakeRasa, store: TicketStore
) -> None:
    rasa.collected = True  # Rasa had no running telegram channel and collected the messages
    view = dispatched(store, ENV, channel="telegram", sender_id="telegram:4242")
    staff = login(notifying, "env1")
    staff.api(
        "POST",
        f"/api/tickets/{view.number}/actions/reply",
        json={"text": "已处理", "expected_version": view.version},
    )
    detail = staff.api("GET", f"/api/tickets/{view.number}").json()
    assert detail["notification"]["status"] == "failed"
    assert "telegram" in detail["notification"]["last_error"]


def test_phone_filed_ticket_is_called_back_not_pushed(
    notifying: Any, rasa: FakeRasa, store: TicketStore
) -> None:
    view = dispatched(store, ENV, channel="hotline", sender_id=None)
    staff = login(notifying, "env1")
    staff.api(
        "POST",
        f"/api/tickets/{view.number}/actions/reply",
        json={"text": "已处理", "expected_version": view.version},
    )
    detail = staff.api("GET", f"/api/tickets/{view.number}").json()
    assert detail["notification"]["status"] == "callback" and rasa.calls == []


def test_failed_notification_is_shown_and_can_be_retried(
    notifying: Any, rasa: FakeRasa, store: TicketStore
) -> None:
    rasa.status = 500
    view = dispatched(store, ENV)
    staff = login(notifying, "env1")
    staff.post_form(
        f"/tickets/{view.number}/do/reply", text="已处理", expected_version=view.version
    )
    page = staff.client.get(f"/tickets/{view.number}").text
    assert 'data-status="failed"' in page and "重试通知" in page
    assert "test-token" not in page
    rasa.status = 200
    retried = staff.api("POST", f"/api/tickets/{view.number}/notify")
    assert retried.json()["status"] == "sent"
    assert retried.json()["notification"]["attempts"] == 2
    assert len(rasa.calls) == 2


def test_hotline_replies_go_to_the_call_back_list(
    notifying: Any, rasa: FakeRasa, store: TicketStore
) -> None:
    view = dispatched(store, ENV, channel="hotline", sender_id=None, phone="13911112222")
    staff = login(notifying, "env1")
    staff.post_form(
        f"/tickets/{view.number}/do/reply", text="已处理", expected_version=view.version
    )
    assert rasa.calls == []
    page = staff.client.get("/callbacks").text
    assert view.number in page and "139****2222" in page and "13911112222" not in page
    phone = staff.api("POST", f"/api/tickets/{view.number}/contact").json()["phone"]
    assert phone == "13911112222"
    assert store.history(view.number)[-1]["action"] == "contact_viewed"


def test_staff_record_a_phone_follow_up(as_user: Any, store: TicketStore) -> None:
    view = dispatched(store, ENV, channel="hotline", sender_id=None)
    store.reply(view.number, "已处理", Actor(Role.DEPARTMENT, "env1", ENV))
    disp = as_user("disp")
    current = store.get(view.number)
    response = disp.post_form(
        f"/tickets/{view.number}/do/rate",
        score="2",
        solved="no",
        comment="电话回访：仍有油烟",
        expected_version=current.version,
    )
    assert response.status_code == 303
    after = store.get(view.number)
    assert after.status.value == "in_progress" and after.rating == 2 and after.reopen_count == 1
    page = disp.client.get(f"/tickets/{view.number}").text
    assert "重新办理 1 次" in page and "未解决" in page


def test_upload_limits_and_roles(as_user: Any) -> None:
    staff = as_user("env1")
    assert staff.api("POST", "/hotline/upload", content=b"x").status_code == 403
    disp = as_user("disp")
    too_big = disp.api(
        "POST",
        "/hotline/upload?name=a.jsonl",
        content=b"x" * (3 * 1024 * 1024),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert too_big.status_code == 413
    empty = disp.api(
        "POST",
        "/hotline/upload?name=a.jsonl",
        content=b"",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert empty.status_code == 422
    no_token = disp.client.post(
        "/hotline/upload", content=b"{}", headers={"Content-Type": "application/octet-stream"}
    )
    assert no_token.status_code == 403
    assert disp.api("GET", "/api/hotline/jobs/nope").status_code == 404


def test_openapi_document_describes_the_api(app: Any) -> None:
    doc = TestClient(app).get("/api/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    for path in (
        "/api/tickets",
        "/api/tickets/{number}",
        "/api/tickets/{number}/actions/{action}",
        "/api/tickets/{number}/contact",
        "/api/tickets/{number}/notify",
    ):
        assert path in doc["paths"], path


def test_cli_manages_users_and_tokens(settings: Settings, store: TicketStore, app: Any) -> None:
    import subprocess
    import sys
    from pathlib import Path

    citizenbot = str(Path(sys.executable).with_name("citizenbot"))
    env = {
        "PATH": "/usr/bin:/bin",
        "VAR_DIR": str(settings.var_dir),
        "PII_KEY": settings.pii_key,
        "HOME": str(settings.var_dir),
    }

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [citizenbot, "users", *args], env=env, capture_output=True, text=True, check=check
        )

    out = run("add", "li", "--role", "department", "--department", ENV).stdout
    password = out.split("一次性密码: ")[1].split()[0]
    assert run("add", "li", "--role", "department", check=False).returncode == 1
    assert run("add", "wang", "--role", "king", check=False).returncode == 1
    token = run("token", "li").stdout.strip()
    client = TestClient(app)
    me = client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me == {
        "username": "li",
        "role": "department",
        "department": ENV,
        "must_change_password": True,
        "disabled": False,
    }
    assert app.state.console.accounts.authenticate("li", password) is not None
    new = run("reset-password", "li").stdout.split("一次性密码: ")[1].split()[0]
    assert app.state.console.accounts.authenticate("li", password) is None
    assert app.state.console.accounts.authenticate("li", new) is not None
    run("disable", "li")
    assert client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert "li\tdepartment" in run("list").stdout


def test_a_50_mb_upload_is_streamed_to_disk_and_handed_to_a_thread(
    store: TicketStore, users: dict, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.console.upload as upload

    seen: dict[str, Any] = {}

    def fake_run(console: Any, job: Any, path: Any) -> None:
        seen.update(size=path.stat().st_size, thread=threading.current_thread().name)
        job.status = "done"
        path.unlink()

    monkeypatch.setattr(upload, "_run", fake_run)
    big = load_settings(
        {"VAR_DIR": str(settings.var_dir), "PII_KEY": settings.pii_key, "RASA_TOKEN": "t" * 10}
    )
    disp = login(create_app(big, store), "disp")
    size = 50 * 1024 * 1024
    response = disp.api(
        "POST",
        "/hotline/upload?name=../../etc/calls.jsonl",
        content=b"{}\n" * (size // 3),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 202, response.text
    job = response.json()["job"]
    assert job["name"] == "calls.jsonl" and job["size"] == size // 3 * 3
    for _ in range(50):
        if seen:
            break
        threading.Event().wait(0.1)
    assert seen["size"] == size // 3 * 3 and seen["thread"] == "ingest"
    assert list((settings.var_dir / "uploads").iterdir()) == []
    page = disp.client.get(response.json()["url"])
    assert page.status_code == 200 and "calls.jsonl" in page.text


def settings_of(app: Any) -> Settings:
    return app.state.console.settings  # type: ignore[no-any-return]
