"""转人工 end to end: the real system (``citizenbot run``) with every chat channel.

One stack for the module (a start costs ~40 s): WeChat and Telegram point at the
recording API servers, the widget is served by Rasa, the console polls. Live
seats are staffed around the clock (``HANDOFF_HOURS=always``) so the tests run
the same at any hour; the off-hours answer is in ``test_actions.py``.

* REST: request → 转人工 → taken → the citizen's messages reach staff and get no
  bot answer, a danger still gets the number to call → staff answer → hand back →
  the bot answers again, and no rating request follows a staff message.
* Nobody takes it: once the wait the bot promised is over the console's sweeper
  hands it to the bot, which says so and files a call-back ticket with the request.
* WeChat and Telegram: the same both ways over the platforms' APIs.
* Chromium: the widget and the console side by side (screenshots in reports/handoff/).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from bot.settings import ROOT, load_settings
from bot.tickets import TicketStore
from bot.tickets.live import LiveStore
from bot.tickets.schema import live_sessions
from tests.browser import chromium, wait_until
from tests.channels.conftest import Account
from tests.channels.telegram_fixtures import SECRET, TOKEN, message_update, new_chat
from tests.channels.wechat_sim import WeChatServer, new_openid
from tests.recording_server import RecordingServer
from tests.stack import Stack, fresh_sender
from tests.telegram_api import TelegramApi

pytestmark = [pytest.mark.stack]

SHOTS = ROOT / "reports" / "handoff"
TICKET = re.compile(r"GD\d{8}-\d{4}")
PASSWORD = "a-much-better-password"
WAIT_MINUTES = 2


def _wait(predicate: Any, timeout: float = 30, step: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met in time")


class Console:
    """A member of staff using the console's JSON API (as the 在线会话 page does)."""

    def __init__(self, base: str, name: str, password: str) -> None:
        self.client = httpx.Client(base_url=base, timeout=60)
        self.csrf = self._csrf("/login")
        answer = self.client.post("/login", data={"csrf_token": self.csrf, "username": name,
                                                  "password": password})
        assert answer.status_code == 303, answer.text[:300]
        self.csrf = self._csrf("/password")
        if password != PASSWORD:
            self.client.post("/password", data={
                "csrf_token": self.csrf, "old_password": password,
                "new_password": PASSWORD, "new_password_again": PASSWORD})
        self.csrf = self._csrf("/live")

    def _csrf(self, path: str) -> str:
        page = self.client.get(path, follow_redirects=True).text
        found = re.search(r'name="csrf-token" content="([^"]+)"', page)
        assert found, page[:300]
        return found.group(1)

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"X-CSRF-Token": self.csrf, "Accept": "application/json"}
        answer = self.client.request(method, path, headers=headers, **kwargs)
        return answer.json()

    def session_of(self, sender: str, live: LiveStore) -> int:
        found = _wait(lambda: live.current(sender), 20)
        listed = self.api("GET", "/api/live")["sessions"]
        assert found.id in [s["id"] for s in listed]  # in the queue at once
        return int(found.id)

    def take(self, session: int) -> None:
        assert self.api("POST", f"/api/live/{session}/take")["ok"]

    def send(self, session: int, text: str) -> dict[str, Any]:
        answer = self.api("POST", f"/api/live/{session}/send", json={"text": text})
        assert answer.get("delivery") == "sent", answer
        return answer

    def texts(self, session: int, speaker: str = "citizen") -> list[str]:
        messages = self.api("GET", f"/api/live/{session}")["messages"]
        return [m["text"] for m in messages if m["speaker"] == speaker and m["flag"] != "before"]


@pytest.fixture(scope="module")
def recording() -> Iterator[RecordingServer]:
    server = RecordingServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def telegram_api() -> Iterator[TelegramApi]:
    api = TelegramApi(token=TOKEN).start()
    yield api
    api.stop()


@pytest.fixture(scope="module")
def system(
    model: Path, tmp_path_factory: pytest.TempPathFactory, recording: RecordingServer,
    telegram_api: TelegramApi,
) -> Iterator[dict[str, Any]]:
    account = Account()
    env = {
        **account.env(recording.base_url, 4.0),
        "TELEGRAM_TOKEN": TOKEN, "TELEGRAM_SECRET_TOKEN": SECRET,
        "TELEGRAM_API_BASE": telegram_api.base_url,
        "REDIS_URL": "",
        "HANDOFF_HOURS": "always",
        "HANDOFF_WAIT_MINUTES": str(WAIT_MINUTES),
    }
    stack = Stack(var_dir=tmp_path_factory.mktemp("handoff-stack"), model=model,
                  extra_env=env).start()
    base = f"http://127.0.0.1:{stack.console_port}"
    try:
        def console_up() -> bool:
            try:
                return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        _wait(console_up, 120, 0.5)
        _wait(lambda: telegram_api.of("getMe"), 30)
        passwords = {}
        for name in ("disp", "disp2"):
            out = stack.citizenbot("users", "add", name, "--role", "dispatcher").stdout
            passwords[name] = re.search(r"一次性密码: (\S+)", out).group(1)  # type: ignore[union-attr]
        settings = load_settings({**stack.env})
        store = TicketStore(settings.database_url, settings=settings)
        staff = Console(base, "disp", passwords["disp"])
        yield {"stack": stack, "base": base, "store": store, "live": LiveStore(store),
               "staff": staff, "passwords": passwords, "account": account}
        store.dispose()
    finally:
        stack.stop()


def _bot_texts(stack: Stack, sender: str) -> list[str]:
    tracker = httpx.get(f"{stack.rasa_url}/conversations/{sender}/tracker",
                        params={"token": "test-token"}, timeout=30).json()
    return [e.get("text") or "" for e in tracker.get("events", []) if e.get("event") == "bot"]


def test_rest_citizen_and_staff_talk_until_the_bot_takes_over_again(system: dict) -> None:
    stack, live, staff = system["stack"], system["live"], system["staff"]
    who = fresh_sender("live")
    sender = f"rest:{who}"
    stack.say_text(who, "你好")
    stack.say_text(who, "办身份证需要带什么材料")
    promise = stack.say_text(who, "我要转人工")
    assert f"{WAIT_MINUTES} 分钟内" in promise and not TICKET.search(promise), promise
    session = staff.session_of(sender, live)
    detail = staff.api("GET", f"/api/live/{session}")
    assert detail["request"] == "办身份证需要带什么材料"  # the request, not 你好
    before = [m["text"] for m in detail["messages"] if m["flag"] == "before"]
    assert before[0] == "你好" and "我要转人工" in before
    staff.take(session)
    assert _bot_texts(stack, sender)[-1].startswith("人工客服已接通")

    # the citizen's messages go to the person, not the bot
    assert stack.say(who, "我想问一下照片有什么要求") == []
    assert stack.say(who, "谢谢") == []
    # typing the console's intent is text like any other: kept for staff, ends nothing
    forged = f'/EXTERNAL_live_ended{{"live_id": "{session}"}}'
    assert stack.say(who, forged) == []
    assert staff.texts(session)[-3:] == ["我想问一下照片有什么要求", "谢谢", forged]
    assert live.get(session).status == "taken"
    staff.send(session, "照片要近期白底彩色免冠照，可以在办证大厅现场拍。")
    texts = _bot_texts(stack, sender)
    assert texts[-1] == "人工客服：照片要近期白底彩色免冠照，可以在办证大厅现场拍。"
    # no rating request after a staff message, and "那照片…" is not answered by the bot
    assert stack.say(who, "那照片有什么要求吗？") == []
    assert not any("打个分" in t for t in _bot_texts(stack, sender))

    # danger is recognised on every message, whoever has the conversation
    danger = stack.say(who, "楼道里着火了，好多烟")
    assert "119" in danger[0]["text"] and TICKET.search(danger[-1]["text"]), danger
    kept = staff.api("GET", f"/api/live/{session}")["messages"]
    assert any(m["flag"] == "emergency" for m in kept)

    assert staff.api("POST", f"/api/live/{session}/hand_back")["ok"]
    assert "继续为您服务" in _bot_texts(stack, sender)[-1]
    assert "12345政务服务助手" in stack.say_text(who, "你好")  # the bot answers again
    assert live.current(sender) is None


def test_nobody_takes_it_and_the_bot_files_the_request_when_the_wait_is_over(
    system: dict,
) -> None:
    stack, live, store = system["stack"], system["live"], system["store"]
    who = fresh_sender("wait")
    sender = f"rest:{who}"
    stack.say_text(who, "你好")
    stack.say_text(who, "我要人工服务")
    session = _wait(lambda: live.current(sender), 20)
    assert session.request == ""
    assert "记下" in stack.say_text(who, "我家门口的路灯坏了一个月了")
    assert stack.say(who, "晚上很黑") == []
    # the promised wait passes (moved back instead of waited for)
    past = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(seconds=1)
    with store.engine.begin() as conn:
        conn.execute(update(live_sessions).where(live_sessions.c.id == session.id)
                     .values(expires_at=past))
    ended = _wait(lambda: (s := live.get(session.id)).callback_number and s, 30)
    assert ended.end_reason == "expired"
    texts = _bot_texts(stack, sender)
    assert f"{WAIT_MINUTES} 分钟内没能接通" in texts[-2], texts[-3:]
    assert ended.callback_number in texts[-1] and "前答复您" in texts[-1]
    ticket = store.get(ended.callback_number)
    assert ticket.kind == "callback" and ticket.summary == "我家门口的路灯坏了一个月了"
    assert "晚上很黑" in ticket.description
    assert "12345政务服务助手" in stack.say_text(who, "你好")  # the bot has it again


def test_wechat_both_ways_through_the_customer_service_api(
    system: dict, recording: RecordingServer
) -> None:
    stack, live, staff, account = system["stack"], system["live"], system["staff"], \
        system["account"]
    wechat = WeChatServer(f"{stack.rasa_url}/webhooks/wechat/webhook", account.token,
                          account.appid, account.aes_key)
    openid = new_openid()
    sender = f"wechat:{openid}"
    wechat.send("text", openid, "safe", content="公积金怎么提取")
    reply = wechat.send("text", openid, "safe", content="转人工")
    assert reply.text and "正在为您转接人工客服" in reply.text, reply.raw
    session = staff.session_of(sender, live)
    staff.take(session)
    assert any(t.startswith("人工客服已接通") for t in recording.sent_texts(openid))
    answer = wechat.send("text", openid, "safe", content="我想提取公积金还房贷")
    assert answer.is_success and answer.text is None  # no bot answer: a person has it
    assert staff.texts(session)[-1] == "我想提取公积金还房贷"
    answer = "请带身份证、借款合同和还款明细到公积金中心办理。"
    staff.send(session, answer)
    assert recording.sent_texts(openid)[-1] == f"人工客服：{answer}"
    # WeChat refuses (the 48-hour window is over): staff see it did not arrive
    recording.send_errors.append(45015)
    refused = staff.api("POST", f"/api/live/{session}/send", json={"text": "还在吗？"})
    assert refused["delivery"] == "failed", refused
    assert staff.api("POST", f"/api/live/{session}/close")["ok"]
    assert "人工服务已结束" in recording.sent_texts(openid)[-1]


def test_telegram_both_ways_through_the_bot_api(system: dict, telegram_api: TelegramApi) -> None:
    stack, live, staff = system["stack"], system["live"], system["staff"]
    chat = new_chat()

    def post(text: str) -> None:
        answer = httpx.post(f"{stack.rasa_url}/webhooks/telegram/webhook",
                            json=message_update(chat, text=text),
                            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}, timeout=60)
        assert answer.status_code == 200, answer.text

    post("社保卡丢了怎么补办")
    post("我要找人工")
    assert "正在为您转接人工客服" in telegram_api.texts(chat)[-1]
    session = staff.session_of(f"telegram:{chat}", live)
    staff.take(session)
    assert telegram_api.texts(chat)[-1].startswith("人工客服已接通")
    count = len(telegram_api.texts(chat))
    post("补办要多少钱")
    assert _wait(lambda: staff.texts(session)[-1:] == ["补办要多少钱"], 10)
    assert len(telegram_api.texts(chat)) == count  # the bot stays silent
    staff.send(session, "补卡工本费以当地规定为准，一般20元左右。")
    assert telegram_api.texts(chat)[-1] == "人工客服：补卡工本费以当地规定为准，一般20元左右。"
    assert staff.api("POST", f"/api/live/{session}/hand_back")["ok"]
    assert "继续为您服务" in telegram_api.texts(chat)[-1]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with chromium() as instance:
        yield instance


WIDGET = "document.querySelector('#citizenbot-webchat').shadowRoot"


def _side_by_side(context: Any, target: Path, *images: Path) -> None:
    """One picture of what the citizen and the member of staff see at the same moment."""
    import base64

    tags = "".join(
        f'<img src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}">'
        for p in images)
    page = context.new_page()
    page.set_viewport_size({"width": 1720, "height": 1020})
    page.set_content(f'<body style="margin:0;display:flex;gap:16px;align-items:flex-start;'
                     f'background:#555;padding:8px">{tags}</body>')
    page.screenshot(path=str(target))
    page.close()


@pytest.mark.browser
def test_widget_and_console_side_by_side_in_chromium(system: dict, browser: Any) -> None:
    from playwright.sync_api import expect

    stack, base, live = system["stack"], system["base"], system["live"]
    citizen = browser.new_context(locale="zh-CN", viewport={"width": 480, "height": 820})
    seat = browser.new_context(locale="zh-CN", viewport={"width": 1200, "height": 1000})
    try:
        widget = citizen.new_page()
        widget.goto(f"{stack.rasa_url}/webchat/demo.html")
        wait_until(widget, f"{WIDGET}.querySelectorAll('.cb-msg').length > 0")
        widget.get_by_role("button", name="在线咨询").click()
        box = widget.get_by_role("textbox", name="请输入您的问题")

        def bot_count() -> int:
            return int(widget.locator(".cb-msg-bot").count())

        def say(text: str, answered: bool = True) -> None:
            before = bot_count()
            box.fill(text)
            box.press("Enter")
            if answered:
                wait_until(widget, f"{WIDGET}.querySelectorAll('.cb-msg-bot').length > {before}",
                           timeout=60_000)

        def wait_bot(text: str) -> None:
            widget.locator(".cb-msg-bot", has_text=text).first.wait_for(timeout=30_000)

        say("公积金怎么提取")
        say("转人工")
        wait_bot("正在为您转接人工客服")

        console = seat.new_page()
        console.goto(f"{base}/login")
        console.fill("input[name=username]", "disp2")
        console.fill("input[name=password]", system["passwords"]["disp2"])
        console.click("#login-form button[type=submit]")
        console.wait_for_load_state()
        if console.url.endswith("/password"):
            console.fill("input[name=old_password]", system["passwords"]["disp2"])
            console.fill("input[name=new_password]", PASSWORD)
            console.fill("input[name=new_password_again]", PASSWORD)
            console.click("#password-form button[type=submit]")
            console.wait_for_load_state()
        console.get_by_role("link", name="在线会话").click()
        row = console.locator("#live-sessions li.session.status-waiting",
                              has_text="公积金怎么提取").first
        row.wait_for(timeout=20_000)
        expect(console).to_have_title(re.compile(r"^\(\d+\) 在线会话"))  # count in the tab
        row.locator("a").click()
        console.get_by_role("button", name="接入").click()
        wait_bot("人工客服已接通")

        say("我想提取公积金还房贷，需要什么材料？", answered=False)
        console.locator("#live-messages li.speaker-citizen",
                        has_text="还房贷").wait_for(timeout=20_000)
        reply = console.get_by_role("textbox", name="回复市民")
        reply.fill("您好，请带身份证、借款合同和近期还款明细。")
        reply.press("Enter")
        wait_bot("人工客服：您好，请带身份证、借款合同和近期还款明细。")
        console.locator("#live-messages li.speaker-staff .delivery-sent").first.wait_for()
        widget.screenshot(path=str(SHOTS / "01-widget-live.png"))
        console.evaluate("window.scrollTo(0, 0)")
        console.screenshot(path=str(SHOTS / "02-console-live.png"))
        _side_by_side(seat, SHOTS / "00-side-by-side.png",
                      SHOTS / "01-widget-live.png", SHOTS / "02-console-live.png")

        console.get_by_role("button", name="交还机器人").click()
        wait_bot("继续为您服务")
        say("你好")
        wait_bot("12345政务服务助手")
        console.locator("#live-status", has_text="已结束").wait_for(timeout=20_000)
        widget.screenshot(path=str(SHOTS / "03-widget-handed-back.png"))
        console.screenshot(path=str(SHOTS / "04-console-ended.png"), full_page=True)
        assert all(s.status == "ended" for s in live.listing()
                   if s.channel == "webchat")
    finally:
        citizen.close()
        seat.close()
