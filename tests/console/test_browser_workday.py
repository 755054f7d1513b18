"""A staff member's day in Chromium: reveal the phone and keep working, a conflict that
keeps the typed reply, a notice after every action, and pages in plain Chinese.

Issue 18, items 2 and 3, done as a person does them: clicks and typing in
Debian's chromium (Playwright), the page's own JavaScript, the console served
by a real uvicorn server (a thread) on a fresh SQLite store. Screenshots go to
``reports/console/``.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from bot.console.accounts import Accounts
from bot.console.core import load_messages
from bot.settings import ROOT
from bot.tickets import Actor, NewTicket, Role, TicketStore
from tests.browser import chromium
from tests.console.conftest import ENV, PASSWORD, dispatched

pytestmark = pytest.mark.browser

SHOTS = ROOT / "reports" / "console"
M = load_messages()
#: codes and Python values nobody should read on a page (see test_workday.RAW)
RAW = re.compile(
    r"(?<![A-Za-z_])(request_id|call_id|intents?|agent|truncated|None|False|True|webchat|"
    r"socketio|rest|hotline|system|citizen:[0-9a-f]+|bot|auto|department_required|"
    r"unknown_department|conflict|contact_viewed|in_progress|follow_up)(?![A-Za-z_])"
)


@pytest.fixture
def server(app: Any, users: dict[str, str], accounts: Accounts) -> Iterator[str]:
    accounts.add("env2", "department", ENV, PASSWORD, must_change=False)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", ws="none", lifespan="off"
    )
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started and time.monotonic() < deadline:
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(10)


@pytest.fixture
def browser() -> Iterator[Any]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with chromium() as instance:
        yield instance


class Person:
    """One member of staff in their own browser context (own cookies, own tab)."""

    def __init__(self, browser: Any, base: str, name: str) -> None:
        self.base = base
        self.context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(f"{base}/login")
        self.page.fill("input[name=username]", name)
        self.page.fill("input[name=password]", PASSWORD)
        self.page.click("#login-form button[type=submit]")
        self.page.wait_for_load_state()
        assert "/login" not in self.page.url

    def open(self, path: str) -> Any:
        return self.page.goto(self.base + path)

    def notice(self, code: str) -> None:
        """Wait for the success notice of ``code`` (shown after the page reloaded)."""
        self.page.locator(".flash.ok", has_text=M[code]).wait_for(timeout=15000)

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_staff_reveal_the_phone_then_start_note_and_reply_without_a_conflict(
    browser: Any, server: str, store: TicketStore
) -> None:
    view = dispatched(store, ENV)
    staff = Person(browser, server, "env1")
    page = staff.page
    staff.open(f"/tickets/{view.number}")

    page.click(".contact-form button")
    page.locator(f"[data-phone-for='{view.number}']", has_text="13812345678").wait_for()
    staff.notice("done_contact")
    assert store.history(view.number)[-1]["action"] == "contact_viewed"
    page.evaluate("window.dispatchEvent(new Event('focus'))")  # the page asks: changed?
    page.wait_for_timeout(1000)
    assert page.locator("#ticket-changed").is_hidden()  # a look is no change
    staff.shot("20-phone-revealed")

    # the forms drawn before the reveal still apply: no reload, no 409
    page.click("form[data-action=start] button[type=submit]")
    staff.notice("done_start")
    assert store.get(view.number).status.value == "in_progress"

    page.fill(".note-form textarea[name=text]", "已电话联系市民，约好今晚上门。")
    page.click(".note-form button[type=submit]")
    staff.notice("done_note")
    assert "已电话联系市民" in page.locator(".notes").inner_text()

    answer = "已联系城管执法部门，烧烤店已停止夜间营业。"
    page.fill(".reply-form textarea[name=text]", answer)
    page.click(".reply-form button[type=submit]")
    staff.notice("done_reply")
    staff.shot("21-replied-with-notice")
    after = store.get(view.number)
    assert after.status.value in ("replied", "follow_up") and after.reply == answer
    assert page.locator(".problem").count() == 0
    assert staff.dialogs == [] and staff.errors == []


def test_a_reload_keeps_what_was_typed(browser: Any, server: str, store: TicketStore) -> None:
    view = dispatched(store, ENV)
    staff = Person(browser, server, "env1")
    staff.open(f"/tickets/{view.number}")
    typed = "您好，关于您反映的油烟问题，我们已经"
    staff.page.fill(".reply-form textarea[name=text]", typed)
    staff.page.reload()
    assert staff.page.input_value(".reply-form textarea[name=text]") == typed
    assert staff.page.locator(".reply-form .draft-note").inner_text() == M["draft.restored"]


def test_a_real_conflict_keeps_the_reply_and_applies_it_on_the_fresh_version(
    browser: Any, server: str, store: TicketStore
) -> None:
    view = dispatched(store, ENV)
    me, colleague = Person(browser, server, "env1"), Person(browser, server, "env2")
    me.open(f"/tickets/{view.number}")
    typed = "您好，执法队员已于今晚到现场检查，烧烤店已整改。"
    me.page.fill(".reply-form textarea[name=text]", typed)

    # meanwhile a colleague, in another browser, adds a note
    colleague.open(f"/tickets/{view.number}")
    colleague.page.fill(".note-form textarea[name=text]", "市民下午两点后在家")
    colleague.page.click(".note-form button[type=submit]")
    colleague.notice("done_note")

    # my page notices when I come back to it (and every 30 s)
    me.page.evaluate("window.dispatchEvent(new Event('focus'))")
    me.page.locator("#ticket-changed").wait_for()
    assert me.page.inner_text("#ticket-changed").startswith(M["ticket.changed"])

    me.page.click(".reply-form button[type=submit]")
    box = me.page.locator(".reply-form .problem.conflict")
    box.wait_for()
    text = box.inner_text()
    assert "env2（部门工作人员 · 市生态环境局）" in text and M["event.note"] in text
    assert "市民下午两点后在家" in text
    assert me.page.input_value(".reply-form textarea[name=text]") == typed
    assert store.get(view.number).reply is None
    me.shot("22-conflict-keeps-the-reply")

    # look first: the page reloads with the colleague's note, the reply is still there
    box.locator("button.reload").click()
    me.page.wait_for_load_state()
    me.page.locator(".notes", has_text="市民下午两点后在家").wait_for()
    assert me.page.input_value(".reply-form textarea[name=text]") == typed

    # another change comes in; this time apply the reply on the fresh version at once
    store.add_note(view.number, "已通知街道", Actor(Role.DEPARTMENT, "env2", ENV))
    me.page.click(".reply-form button[type=submit]")
    box.wait_for()
    assert "已通知街道" in box.inner_text()
    box.locator("button.apply").click()
    me.notice("done_reply")
    assert store.get(view.number).reply == typed
    # sent: the draft is gone, a later visit starts empty
    me.open(f"/tickets/{view.number}")
    assert me.page.locator(".problem").count() == 0
    assert me.dialogs == [] and me.errors == [] and colleague.errors == []


def test_pages_read_as_plain_chinese_and_errors_say_what_to_do(
    browser: Any, server: str, store: TicketStore
) -> None:
    hotline = store.create(
        NewTicket(
            channel="hotline",
            kind="complaint",
            summary="来电反映建设路工地夜间施工噪音",
            phone="13712345678",
            source="hotline:call-7",
            facts={
                "call_id": "call-7",
                "started_at": "2026-11-27T09:15:00+08:00",
                "agent": None,
                "intent": "complain",
                "intents": ["complain", "inform"],
                "truncated": False,
                "request_id": "req-7",
                "file": "calls.jsonl",
                "line": 2,
            },
        ),
        Actor.system(),
    )
    store.create(
        NewTicket(channel="webchat", kind="complaint", summary="路灯不亮", sender_id="webchat:w1")
    )
    disp = Person(browser, server, "disp")
    disp.open(f"/tickets/{hotline.number}")
    disp.page.click(".contact-form button")
    disp.notice("done_contact")
    disp.open(f"/tickets/{hotline.number}")  # the look is in the timeline, by name
    main = disp.page.inner_text("main")
    assert not RAW.search(main), (RAW.search(main), main)
    for shown in ("通话编号", "来电时间", "投诉、反映情况", "系统自动", "查看联系方式"):
        assert shown in main, shown
    disp.page.click("details.tech summary")  # developer fields: one click away, labelled so
    assert "req-7" in disp.page.inner_text("details.tech")
    disp.shot("23-ticket-plain-chinese")

    # an error says what to do next: dispatch without a department lists the departments
    form = disp.page.locator("form[data-action=dispatch]")
    form.locator("select[name=department]").evaluate("s => { s.required = false; s.value = ''; }")
    form.locator("button[type=submit]").click()
    problem = form.locator(".problem")
    problem.wait_for()
    assert all(d in problem.inner_text() for d in store.departments())
    assert "department_required" not in disp.page.inner_text("main")
    disp.shot("24-error-lists-departments")

    disp.open("/queue/department?status=all")
    assert not RAW.search(disp.page.inner_text("main"))
    assert "网页" in disp.page.inner_text("main") and "电话" in disp.page.inner_text("main")

    boss = Person(browser, server, "boss")
    boss.open("/supervision")
    boss.page.wait_for_selector("body[data-charts-ready]", state="attached")
    main = boss.page.inner_text("main")
    assert not re.search(r"(?<![A-Za-z])(webchat|rest|hotline|wechat)(?![A-Za-z])", main)
    assert "网页" in boss.page.inner_text("#table-volume-channel")
    boss.page.locator("#volume-channel").screenshot(path=str(SHOTS / "25-dashboard-channels.png"))
    assert disp.errors == [] and boss.errors == []
