"""The whole loop in a real browser against the real system (``citizenbot run``).

A citizen complains over REST → a dispatcher dispatches in the console → the
department replies → the reply reaches the citizen's REST conversation through
Rasa → the citizen rates 2 and says it is not solved → the ticket is reopened
and the console shows it. Also: a department cannot reach another department's
ticket, forms without a CSRF token are refused, a citizen's HTML is shown as
text and never run, 待回电 reveals a phone, the hotline upload ingests a file,
and the pages fit a phone screen. Screenshots go to ``reports/console/``.

One stack for the module (each start costs ~40 s); routing is forced to manual
(``ROUTING_THRESHOLD`` > 1) so the dispatcher has something to dispatch.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.settings import ROOT, load_settings
from bot.tickets import Actor, NewTicket, Role, TicketStore
from tests.browser import chromium
from tests.stack import Stack

pytestmark = [pytest.mark.stack, pytest.mark.browser]

SHOTS = ROOT / "reports" / "console"
TICKET = re.compile(r"GD\d{8}-\d{4}")
ENV = "市生态环境局"
HOUSING = "市住房和城乡建设局"
NEW_PASSWORD = "a-much-better-password"
XSS = "<script>alert(1)</script><img src=x onerror=alert(1)>"


def _wait(predicate: Any, timeout: float = 60, step: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met in time")


@pytest.fixture(scope="module")
def live(model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The running system, its console URL, and the first-run admin password."""
    var = tmp_path_factory.mktemp("console-stack")
    stack = Stack(var_dir=var, model=model, extra_env={"ROUTING_THRESHOLD": "1.01"}).start()
    base = f"http://127.0.0.1:{stack.console_port}"
    try:

        def console_up() -> bool:
            try:
                return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        _wait(console_up, 120)
        password_line = r"one-time password[^:]*:\s+(\S+)"
        found = _wait(lambda: re.search(password_line, stack.log(tail=None)), 30)
        passwords = {"admin": found.group(1)}
        for name, role, department in (
            ("disp", "dispatcher", None),
            ("env1", "department", ENV),
            ("house1", "department", HOUSING),
        ):
            args = ["users", "add", name, "--role", role]
            if department:
                args += ["--department", department]
            out = stack.citizenbot(*args).stdout
            passwords[name] = re.search(r"一次性密码: (\S+)", out).group(1)  # type: ignore[union-attr]
        settings = load_settings({**stack.env})
        store = TicketStore(settings.database_url, settings=settings)
        yield {"stack": stack, "base": base, "passwords": passwords, "store": store}
        store.dispose()
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with chromium() as instance:
        yield instance


class Person:
    """One member of staff in their own browser context (own cookies)."""

    def __init__(self, browser: Any, live: dict[str, Any], name: str, **context: Any) -> None:
        self.live = live
        self.name = name
        self.context = browser.new_context(locale="zh-CN", **context)
        self.page = self.context.new_page()
        self.dialogs: list[str] = []
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

    def goto(self, path: str) -> Any:
        return self.page.goto(self.live["base"] + path)

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def login(self) -> None:
        """Sign in; at the first login the one-time password must be changed at once."""
        self.goto("/login")
        self.page.fill("input[name=username]", self.name)
        self.page.fill("input[name=password]", self.live["passwords"][self.name])
        self.page.click("#login-form button[type=submit]")
        self.page.wait_for_load_state()
        if self.page.url.endswith("/password"):
            self.page.fill("input[name=old_password]", self.live["passwords"][self.name])
            self.page.fill("input[name=new_password]", NEW_PASSWORD)
            self.page.fill("input[name=new_password_again]", NEW_PASSWORD)
            self.page.click("#password-form button[type=submit]")
            self.page.wait_for_load_state()
            self.live["passwords"][self.name] = NEW_PASSWORD
        assert "/password" not in self.page.url and "/login" not in self.page.url

    def close(self) -> None:
        self.context.close()


def _file_complaint(stack: Stack, sender: str) -> str:
    stack.say_text(sender, "我要投诉小区楼下烧烤店每天半夜还在营业，油烟和噪音很大")
    stack.say_text(sender, "幸福里小区3栋楼下")
    stack.say_text(sender, "最近一个月每天晚上")
    stack.say_text(sender, "13812345678")
    reply = stack.say_text(sender, "确认")
    found = TICKET.search(reply)
    assert found, reply
    return found.group(0)


def _tracker_texts(stack: Stack, sender: str) -> list[str]:
    tracker = httpx.get(
        f"{stack.rasa_url}/conversations/rest:{sender}/tracker?token=test-token", timeout=10
    ).json()
    return [e.get("text") or "" for e in tracker.get("events", []) if e.get("event") == "bot"]


def test_whole_loop_complaint_dispatch_reply_rating_reopen(browser: Any, live: dict) -> None:
    stack, store = live["stack"], live["store"]
    sender = "console-loop-citizen"
    number = _file_complaint(stack, sender)
    assert store.get(number).status.value == "received"

    admin = Person(browser, live, "admin")
    admin.goto("/")
    assert "/login" in admin.page.url
    admin.login()  # the first-run account, forced to change its one-time password
    assert live["passwords"]["admin"] == NEW_PASSWORD
    admin.close()

    dispatcher = Person(browser, live, "disp")
    dispatcher.login()
    page = dispatcher.page
    dispatcher.goto("/queue/dispatch")
    card = page.locator(f"article[data-number='{number}']")
    card.wait_for()
    dispatcher.shot("01-dispatch-queue")
    card.locator(".dispatch-form select[name=department]").select_option(ENV)
    card.locator(".dispatch-form button[type=submit]").click()
    _wait(lambda: store.get(number).status.value == "dispatched", 20)
    assert store.get(number).department == ENV
    dispatcher.close()

    staff = Person(browser, live, "env1")
    staff.login()
    page = staff.page
    staff.goto("/queue/department")
    page.locator(f"article[data-number='{number}'] a").first.click()
    page.wait_for_url(f"**/tickets/{number}")
    staff.shot("02-ticket-before-reply")
    answer = "已联系城管执法部门，烧烤店已停止夜间营业并安装油烟净化器。"
    page.fill(".reply-form textarea[name=text]", answer)
    page.click(".reply-form button[type=submit]")
    _wait(lambda: store.get(number).status.value in ("replied", "follow_up"), 20)

    # the reply reaches the citizen's own (REST) conversation through Rasa
    _wait(lambda: [t for t in _tracker_texts(stack, sender) if "油烟净化器" in t], 60)
    _wait(lambda: store.get(number).status.value == "follow_up", 30)
    staff.goto(f"/tickets/{number}")
    assert page.locator(".notification[data-status='sent']").count() == 1
    staff.shot("03-ticket-replied-notified")

    # 回访: 2 points (typed as a bare "2", as many elderly citizens answer), not solved -> reopened
    asked = stack.say_text(sender, "2")
    reply = stack.say_text(sender, "还是没解决")
    view = _wait(lambda: (v := store.get(number)).status.value == "in_progress" and v, 30)
    assert view.rating == 2 and view.rating_solved is False and view.reopen_count == 1, (
        asked,
        reply,
    )

    staff.goto(f"/tickets/{number}")
    assert page.locator(".rating-score").inner_text() == "2"
    assert page.locator(".reopened-line").count() == 1
    assert page.locator(".meta .badge.reopened").count() == 1
    staff.shot("04-ticket-reopened-rating-2")
    staff.goto("/queue/department")
    assert page.locator(f"article[data-number='{number}'] .badge.reopened").count() == 1
    assert not staff.dialogs
    staff.close()
    live["loop_ticket"] = number


def test_department_cannot_reach_another_departments_ticket(browser: Any, live: dict) -> None:
    store = live["store"]
    view = store.create(
        NewTicket(
            channel="rest", kind="complaint", summary="河道有人偷排污水", sender_id="rest:s-iso"
        )
    )
    view = store.dispatch(view.number, ENV, Actor(Role.DISPATCHER, "disp"))
    other = Person(browser, live, "house1")
    other.login()
    response = other.goto(f"/tickets/{view.number}")
    assert response.status == 404
    assert "河道" not in other.page.content()
    other.goto("/queue/department?status=all")
    assert other.page.locator(f"article[data-number='{view.number}']").count() == 0
    csrf = other.page.locator("meta[name=csrf-token]").get_attribute("content")
    api = other.context.request
    assert api.get(f"{live['base']}/api/tickets/{view.number}").status == 404
    listed = api.get(f"{live['base']}/api/tickets?status=all&per_page=100").json()
    assert view.number not in {t["number"] for t in listed["items"]}
    assert api.get(f"{live['base']}/api/tickets?department={ENV}").status == 403
    changed = api.post(
        f"{live['base']}/api/tickets/{view.number}/actions/reply",
        data=json.dumps({"text": "越权答复"}),
        headers={"X-CSRF-Token": csrf, "Content-Type": "application/json"},
    )
    assert changed.status == 404
    assert store.get(view.number).status.value == "dispatched"
    assert store.get(view.number).reply is None
    other.shot("05-other-department-refused")
    other.close()


def test_form_without_csrf_token_is_refused(browser: Any, live: dict) -> None:
    store = live["store"]
    view = store.create(
        NewTicket(channel="rest", kind="complaint", summary="路灯不亮", sender_id="rest:s-csrf")
    )
    view = store.dispatch(view.number, ENV, Actor(Role.DISPATCHER, "disp"))
    staff = Person(browser, live, "env1")
    staff.login()
    response = staff.context.request.post(
        f"{live['base']}/tickets/{view.number}/do/reply",
        form={"text": "没有令牌的答复", "expected_version": str(view.version)},
    )
    assert response.status == 403
    assert store.get(view.number).reply is None
    staff.close()


def test_citizen_html_is_shown_as_text_never_run(browser: Any, live: dict) -> None:
    store = live["store"]
    view = store.create(
        NewTicket(
            channel="rest",
            kind="complaint",
            summary=f"噪音扰民{XSS}",
            description=XSS,
            place=f"人民路{XSS}",
            sender_id="rest:s-xss",
            transcript=[{"speaker": "citizen", "text": XSS}],
        )
    )
    dispatcher = Person(browser, live, "disp")
    dispatcher.login()
    for path in ("/queue/dispatch", f"/tickets/{view.number}"):
        dispatcher.goto(path)
        dispatcher.page.wait_for_timeout(500)
        text = dispatcher.page.locator("main").inner_text()
        assert "<script>alert(1)</script>" in text
        assert dispatcher.page.locator("main img[src=x]").count() == 0
        assert dispatcher.page.locator("main script").count() == 0
    dispatcher.shot("06-html-shown-as-text")
    assert dispatcher.dialogs == []
    dispatcher.close()


def test_call_back_list_reveals_the_phone_and_the_page_fits_a_phone(
    browser: Any, live: dict
) -> None:
    store = live["store"]
    view = store.create(
        NewTicket(
            channel="hotline",
            kind="complaint",
            summary="来电反映小区垃圾清运不及时",
            phone="13987654321",
            source="hotline:call-1",
        ),
        Actor.system(),
    )
    view = store.dispatch(view.number, ENV, Actor(Role.DISPATCHER, "disp"))
    store.reply(view.number, "已安排每日清运两次", Actor(Role.DEPARTMENT, "env1", ENV))
    staff = Person(browser, live, "env1", viewport={"width": 390, "height": 844})
    staff.login()
    staff.goto("/callbacks")
    row = staff.page.locator(f"article[data-number='{view.number}']")
    assert "139****4321" in row.inner_text()
    row.locator(".contact-form button").click()
    staff.page.wait_for_function(
        "n => document.querySelector(`[data-phone-for='${n}']`)"
        ".textContent.includes('13987654321')",
        arg=view.number,
    )
    assert any(e["action"] == "contact_viewed" for e in store.history(view.number))
    width = staff.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 392, f"page is {width}px wide on a 390px phone"
    staff.shot("07-callbacks-phone")
    staff.goto("/queue/department")
    assert staff.page.evaluate("document.documentElement.scrollWidth") <= 392
    staff.shot("08-department-queue-phone")
    staff.close()


def test_hotline_upload_ingests_a_file_and_shows_the_summary(
    browser: Any, live: dict, tmp_path: Path
) -> None:
    calls = [
        {
            "call_id": "console-up-1",
            "started_at": "2026-11-27T09:15:00+08:00",
            "caller": "13712345678",
            "agent": "王",
            "turns": [
                {"speaker": "agent", "text": "您好，12345热线。"},
                {"speaker": "citizen", "text": "我要投诉建设路工地夜间施工噪音太大，吵得睡不着"},
            ],
        }
    ]
    lines = [json.dumps(c, ensure_ascii=False) for c in calls] + ["{broken json"]
    path = tmp_path / "calls.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    dispatcher = Person(browser, live, "disp")
    dispatcher.login()
    dispatcher.goto("/hotline/upload")
    dispatcher.page.set_input_files("input[type=file]", str(path))
    dispatcher.page.click("#upload-form button[type=submit]")
    dispatcher.page.wait_for_url("**/hotline/jobs/**")
    job_api = dispatcher.page.url.replace("/hotline/jobs/", "/api/hotline/jobs/")
    # the console loads the Rasa model on the first upload (~25 s, more on a busy machine)
    job = _wait(
        lambda: (
            (j := dispatcher.context.request.get(job_api).json())["status"] in ("done", "failed")
            and j
        ),
        400,
        2,
    )
    assert job["status"] == "done", job
    dispatcher.goto(dispatcher.page.url.replace(live["base"], ""))
    dispatcher.shot("09-hotline-upload-summary")
    assert dispatcher.page.locator(".upload-job").get_attribute("data-status") == "done"
    assert dispatcher.page.locator(".calls-read").inner_text() == "1"
    assert dispatcher.page.locator(".tickets-created").inner_text() == "1"
    assert "calls.jsonl:2" in dispatcher.page.locator(".problems").inner_text()
    dispatcher.close()
