"""The web chat widget in a real browser against the real bot (``citizenbot run``).

A citizen on the demo government homepage opens the chat bubble, files a
complaint, reloads and finds the conversation again, switches on 适老化 mode,
answers with quick replies using only the keyboard, loses the connection
mid-conversation, and uses a phone. axe-core checks accessibility.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.browser import wait_until
from tests.stack import Stack
from tests.webchat.conftest import AXE

pytestmark = [pytest.mark.stack, pytest.mark.browser]

TICKET = re.compile(r"GD\d{8}-\d{4}")
COMPLAINT = "我要投诉小区楼下烧烤店每天半夜还在营业，油烟和噪音很大"
ROOT_JS = "document.querySelector('#citizenbot-webchat').shadowRoot"


class Chat:
    """The widget on one page, driven the way a citizen would."""

    def __init__(self, page: Any) -> None:
        self.page = page

    @classmethod
    def visit(cls, context: Any, stack: Stack, viewport: dict[str, int] | None = None) -> Chat:
        page = context.new_page()
        if viewport:
            page.set_viewport_size(viewport)
        page.goto(f"{stack.rasa_url}/webchat/demo.html")
        chat = cls(page)
        chat.wait_connected()
        return chat

    def wait_connected(self) -> None:
        # the session is confirmed and the history fetched: the log has at least the greeting
        wait_until(self.page, f"{ROOT_JS}.querySelectorAll('.cb-msg').length > 0")

    def open(self) -> None:
        self.page.get_by_role("button", name="在线咨询").click()
        self.page.get_by_role("textbox", name="请输入您的问题").wait_for()

    @property
    def input(self) -> Any:
        return self.page.get_by_role("textbox", name="请输入您的问题")

    def bot_count(self) -> int:
        return int(self.page.locator(".cb-msg-bot").count())

    def wait_answer(self, before: int) -> list[str]:
        """Wait until the bot answered (new messages and the typing indicator gone)."""
        wait_until(
            self.page,
            f"{ROOT_JS}.querySelectorAll('.cb-msg-bot').length > {before}"
            f" && {ROOT_JS}.querySelector('.cb-typing').hidden",
            timeout=60_000,
        )
        return self.bot_texts()[before:]

    def say(self, text: str) -> str:
        before = self.bot_count()
        self.input.fill(text)
        self.input.press("Enter")
        return "\n".join(self.wait_answer(before))

    def bot_texts(self) -> list[str]:
        return [t.removeprefix("客服：").strip() for t in
                self.page.locator(".cb-msg-bot").all_inner_texts()]

    def user_texts(self) -> list[str]:
        return [t.removeprefix("我：").strip() for t in
                self.page.locator(".cb-msg-user").all_inner_texts()]

    def replies(self) -> list[str]:
        return list(self.page.locator(".cb-reply").all_inner_texts())


def _luminance(rgb: str) -> float:
    channels = [int(c) / 255 for c in re.findall(r"\d+", rgb)[:3]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(foreground: str, background: str) -> float:
    """WCAG contrast ratio of two computed ``rgb(…)`` colours."""
    lighter, darker = sorted((_luminance(foreground), _luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def styles(page: Any, selector: str) -> dict[str, str]:
    return dict(page.locator(selector).first.evaluate(
        "el => { const s = getComputedStyle(el);"
        " return {fontSize: s.fontSize, color: s.color, background: s.backgroundColor,"
        " minHeight: s.minHeight, height: String(el.getBoundingClientRect().height)}; }"))


# -- the complaint, and the history after a reload ----------------------------------------


def test_complaint_through_the_widget_and_history_after_reload(
    web_stack: Stack, context: Any, reports: Path
) -> None:
    chat = Chat.visit(context, web_stack)
    chat.open()
    assert "地" in chat.say(COMPLAINT) or "哪里" in chat.bot_texts()[-1]
    assert "时候" in chat.say("幸福路12号幸福小区")
    assert "手机号" in chat.say("每天晚上十二点以后")
    assert "不留电话" in chat.replies()
    summary = chat.say("不留")
    assert "幸福路12号" in summary and "确认" in summary
    assert "确认提交" in chat.replies()
    done = chat.say("确认")
    ticket = TICKET.search(done)
    assert ticket, done
    chat.page.screenshot(path=str(reports / "complaint.png"))

    # the same session after a reload: the history comes back from the server's tracker
    chat.page.evaluate("localStorage.removeItem('citizenbot.webchat.draft')")
    chat.page.reload()
    chat.wait_connected()
    wait_until(chat.page, f"{ROOT_JS}.querySelectorAll('.cb-msg-user').length >= 5")
    assert chat.page.locator(".cb-panel").is_visible()  # stays open across the reload
    users = chat.user_texts()
    assert users[:5] == [COMPLAINT, "幸福路12号幸福小区", "每天晚上十二点以后", "不留", "确认"]
    assert ticket.group(0) in "\n".join(chat.bot_texts())
    chat.page.screenshot(path=str(reports / "history-after-reload.png"))

    # a second tab of the same browser joins the same conversation
    other = Chat.visit(context, web_stack)
    wait_until(other.page, f"{ROOT_JS}.querySelectorAll('.cb-msg-user').length >= 5")
    before = other.bot_count()
    chat.say("你好")
    other.wait_answer(before)
    assert other.user_texts()[-1] == "你好"


def test_history_is_not_in_local_storage(web_stack: Stack, context: Any) -> None:
    """Only the session id is kept in the browser; the conversation is the server's."""
    chat = Chat.visit(context, web_stack)
    chat.open()
    chat.say("你好")
    stored = chat.page.evaluate("JSON.stringify(Object.assign({}, localStorage))")
    assert "你好" not in stored
    session = chat.page.evaluate("localStorage.getItem('citizenbot.webchat.session')")
    assert re.fullmatch(r"[0-9a-f]{32}", session)


# -- 适老化 ---------------------------------------------------------------------------------


def test_elderly_mode_large_text_high_contrast(
    web_stack: Stack, context: Any, reports: Path
) -> None:
    chat = Chat.visit(context, web_stack)
    chat.open()
    chat.say("你好")
    normal = styles(chat.page, ".cb-msg-bot")
    toggle = chat.page.get_by_role("button", name="适老模式")
    assert toggle.get_attribute("aria-pressed") == "false"
    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "true"

    bot = styles(chat.page, ".cb-msg-bot")
    user = styles(chat.page, ".cb-msg-user")
    reply = styles(chat.page, ".cb-reply")
    send = styles(chat.page, ".cb-send")
    assert float(bot["fontSize"].removesuffix("px")) >= 20
    assert float(bot["fontSize"].removesuffix("px")) > float(normal["fontSize"].removesuffix("px"))
    # WCAG AAA (7:1) for message text and buttons
    assert contrast(bot["color"], bot["background"]) >= 7
    assert contrast(user["color"], user["background"]) >= 7
    assert contrast(reply["color"], reply["background"]) >= 7
    assert contrast(send["color"], send["background"]) >= 7
    # bigger targets: at least 56 px high
    assert float(reply["height"]) >= 56 and float(send["height"]) >= 56
    chat.page.screenshot(path=str(reports / "elderly-mode.png"))

    # the choice is remembered
    chat.page.reload()
    chat.wait_connected()
    assert chat.page.get_by_role("button", name="适老模式").get_attribute("aria-pressed") == "true"


def test_works_at_200_percent_zoom_and_on_a_phone(
    browser: Any, web_stack: Stack, reports: Path
) -> None:
    # 200 % zoom of a 1280×800 window: a 640×400 CSS viewport at device scale 2
    for name, options in {
        "zoom-200": {"viewport": {"width": 640, "height": 400}, "device_scale_factor": 2},
        "phone": {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3,
                  "is_mobile": True, "has_touch": True},
    }.items():
        ctx = browser.new_context(locale="zh-CN", **options)
        try:
            chat = Chat.visit(ctx, web_stack)
            chat.open()
            chat.page.get_by_role("button", name="适老模式").click()
            chat.say("你好")
            width, height = options["viewport"]["width"], options["viewport"]["height"]
            for selector in (".cb-panel", ".cb-send", ".cb-input", ".cb-elderly-toggle"):
                box = chat.page.locator(selector).bounding_box()
                assert box is not None, selector
                assert box["x"] >= 0 and box["y"] >= 0, (name, selector, box)
                assert box["x"] + box["width"] <= width + 1, (name, selector, box)
                assert box["y"] + box["height"] <= height + 1, (name, selector, box)
            chat.page.screenshot(path=str(reports / f"{name}.png"))
        finally:
            ctx.close()


# -- keyboard only --------------------------------------------------------------------------


def _focused(page: Any) -> str:
    return str(page.evaluate(
        "() => { let el = document.activeElement;"
        " while (el && el.shadowRoot && el.shadowRoot.activeElement)"
        "   el = el.shadowRoot.activeElement;"
        " return el ? (el.getAttribute('aria-label') || el.textContent || '').trim() : ''; }"))


def _tab_to(page: Any, label: str, key: str = "Tab", limit: int = 40) -> None:
    for _ in range(limit):
        if _focused(page) == label:
            return
        page.keyboard.press(key)
    raise AssertionError(f"never reached {label!r} with {key}; at {_focused(page)!r}")


def test_quick_replies_with_the_keyboard_only(
    web_stack: Stack, context: Any, reports: Path
) -> None:
    page = context.new_page()
    page.goto(f"{web_stack.rasa_url}/webchat/demo.html")
    chat = Chat(page)
    chat.wait_connected()
    _tab_to(page, "在线咨询")
    page.keyboard.press("Enter")
    assert _focused(page) == "请输入您的问题"
    before = chat.bot_count()
    page.keyboard.type("你好")
    page.keyboard.press("Enter")
    chat.wait_answer(before)
    assert "我要投诉" in chat.replies()

    _tab_to(page, "我要投诉", key="Shift+Tab")
    before = chat.bot_count()
    page.keyboard.press("Enter")
    answer = "\n".join(chat.wait_answer(before))
    assert chat.user_texts()[-1] == "我要投诉"  # the title, not the /complain payload
    assert answer
    page.screenshot(path=str(reports / "keyboard-quick-reply.png"))

    # Escape closes the panel and gives focus back to the launcher
    _tab_to(page, "请输入您的问题")
    page.keyboard.press("Escape")
    assert not page.locator(".cb-panel").is_visible()
    assert _focused(page) == "在线咨询"


# -- the connection drops --------------------------------------------------------------------


def test_connection_lost_notice_and_reconnect_keeps_the_message(
    web_stack: Stack, context: Any, reports: Path
) -> None:
    chat = Chat.visit(context, web_stack)
    chat.open()
    chat.say("你好")
    # cut the transport the way a network failure does: socket.io reconnects by itself
    chat.page.evaluate("CitizenChat.instance.socket.io.engine.close()")
    chat.page.evaluate(
        "() => { const io = CitizenChat.instance.socket.io; io.reconnectionDelay(3000);"
        " io.reconnectionDelayMax(3000); }")
    status = chat.page.get_by_role("status")
    status.wait_for()
    assert "断开" in status.inner_text()
    chat.page.screenshot(path=str(reports / "connection-lost.png"))

    before = chat.bot_count()
    chat.input.fill("我要咨询")
    chat.input.press("Enter")
    assert chat.page.locator(".cb-msg-pending").count() == 1  # shown, waiting to go out
    answer = chat.wait_answer(before)  # sent after the automatic reconnect
    assert answer
    assert chat.page.locator(".cb-msg-pending").count() == 0
    assert not status.is_visible()
    assert chat.user_texts()[-1] == "我要咨询"


# -- accessibility -----------------------------------------------------------------------------


def test_axe_reports_no_serious_violations(web_stack: Stack, context: Any, reports: Path) -> None:
    chat = Chat.visit(context, web_stack)
    chat.open()
    chat.say("你好")  # messages and quick replies on screen
    chat.page.add_script_tag(path=str(AXE))
    results: dict[str, Any] = {}
    for mode in ("normal", "elderly"):
        if mode == "elderly":
            chat.page.get_by_role("button", name="适老模式").click()
        found = chat.page.evaluate(
            "async () => { const r = await axe.run({include: [['#citizenbot-webchat']]},"
            " {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa',"
            " 'best-practice']}}); return {violations: r.violations.map(v => ({id: v.id,"
            " impact: v.impact, help: v.help, nodes: v.nodes.length})),"
            " passes: r.passes.length}; }")
        results[mode] = found
    (reports / "axe.json").write_text(json.dumps(results, ensure_ascii=False, indent=2))
    serious = [v for mode in results.values() for v in mode["violations"]
               if v["impact"] in ("serious", "critical")]
    assert not serious, serious
