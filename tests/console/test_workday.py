"""A working day at the console (TestClient): no 409 after a look, conflicts that keep
the typed text, a notice after every action, and only plain Chinese on the pages.

Issue 18, items 2 and 3. The browser half is ``test_browser_workday.py``.
"""

from __future__ import annotations

import csv
import io
import re
from html.parser import HTMLParser
from typing import Any

import pytest

from bot.console.core import load_messages
from bot.console.wording import explain, store_text
from bot.tickets import Actor, NewTicket, Role, TicketStore, messages
from bot.tickets.errors import (
    ConflictError,
    IllegalTransition,
    InvalidInput,
    PermissionDenied,
    TicketNotFound,
)
from tests.console.conftest import ENV, dispatched, new_ticket

M = load_messages()
VERSION = re.compile(r'name="expected_version" value="(\d+)"')
COLLEAGUE = Actor(Role.DEPARTMENT, "env9", ENV)
#: what a person must never read on a page: codes, Python values, technical names
RAW = re.compile(
    r"(?<![A-Za-z_])(request_id|call_id|intents?|agent|truncated|None|False|True|webchat|"
    r"socketio|rest|hotline|system|citizen:[0-9a-f]+|bot|auto|department_required|"
    r"unknown_department|conflict|contact_viewed|in_progress|follow_up)(?![A-Za-z_])"
)


class _Visible(HTMLParser):
    """The text a person sees: no tags, no scripts, nothing inside a closed <details>."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("details", "script", "style", "title", "head"):
            self.hidden += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("details", "script", "style", "title", "head"):
            self.hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def visible(html: str) -> str:
    parser = _Visible()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def version_on(page: str) -> int:
    found = VERSION.search(page)
    assert found, page[:300]
    return int(found.group(1))


def notices(page: str) -> list[str]:
    return re.findall(r'<div class="flash ok" data-code="[^"]+"><p>([^<]+)</p>', page)


def test_revealing_the_phone_then_working_needs_no_reload(as_user: Any, store: TicketStore) -> None:
    """The issue's steps: open, reveal the phone, then start, note, reply from the same page."""
    view = dispatched(store, ENV)
    staff = as_user("env1")
    url = f"/tickets/{view.number}"
    page = staff.client.get(url).text
    opened = version_on(page)
    revealed = staff.api("POST", f"/api/tickets/{view.number}/contact")
    assert revealed.status_code == 200 and revealed.json()["phone"] == "13812345678"
    assert store.get(view.number).version == opened  # the look is no change
    assert store.history(view.number)[-1]["action"] == "contact_viewed"  # but it is audited

    started = staff.post_form(f"{url}/do/start", expected_version=opened)
    assert started.status_code == 303, started.text[:300]
    page = staff.client.get(url).text
    assert notices(page) == [M["done_start"]]
    # the no-JavaScript reveal (a form post) is no change either
    shown = staff.post_form(f"{url}/contact")
    assert "13812345678" in shown.text and M["done_contact"] in shown.text
    for action, text in (("note", "已电话联系市民"), ("reply", "已联系城管，烧烤店已整改。")):
        done = staff.post_form(f"{url}/do/{action}", text=text, expected_version=version_on(page))
        assert done.status_code == 303, (action, done.text[:300])
        page = staff.client.get(url).text
        assert notices(page) == [M[f"done_{action}"]]
    after = store.get(view.number)
    assert after.status.value == "replied" and after.reply == "已联系城管，烧烤店已整改。"
    assert store.verify_audit() == []


def test_a_real_conflict_names_the_change_and_applies_on_the_fresh_version(
    as_user: Any, store: TicketStore
) -> None:
    view = dispatched(store, ENV)
    staff = as_user("env1")
    url = f"/api/tickets/{view.number}/actions/reply"
    store.add_note(view.number, "市民下午两点后在家", COLLEAGUE)
    refused = staff.api("POST", url, json={"text": "我的答复", "expected_version": view.version})
    assert refused.status_code == 409
    body = refused.json()
    assert body["error"] == "conflict" and body["message"] == M["conflict"]
    assert body["detail"]  # the machine-readable detail stays for API clients
    assert body["current_version"] == view.version + 1 and body["can_retry"] is True
    [change] = body["changes"]
    assert change["who"] == "env9（部门工作人员 · 市生态环境局）"
    assert change["what"] == M["event.note"] and change["quote"] == "市民下午两点后在家"
    assert store.get(view.number).reply is None
    applied = staff.api(
        "POST", url, json={"text": "我的答复", "expected_version": body["current_version"]}
    )
    assert applied.status_code == 200, applied.text
    assert store.get(view.number).reply == "我的答复"


def test_a_conflict_that_ends_the_action_says_so(as_user: Any, store: TicketStore) -> None:
    view = dispatched(store, ENV)
    store.reply(view.number, "同事已经答复了", COLLEAGUE)
    refused = as_user("env1").api(
        "POST",
        f"/api/tickets/{view.number}/actions/reply",
        json={"text": "我的答复", "expected_version": view.version},
    )
    body = refused.json()
    assert refused.status_code == 409 and body["can_retry"] is False
    assert [c["what"] for c in body["changes"]] == [M["event.reply"]]
    assert body["changes"][0]["gist"] == "已派单 → 已答复"
    assert body["changes"][0]["quote"] == "同事已经答复了"


def test_without_javascript_a_conflict_keeps_the_typed_reply(
    as_user: Any, store: TicketStore
) -> None:
    view = dispatched(store, ENV)
    staff = as_user("env1")
    typed = "您好，已安排执法队员今晚到现场检查。"
    store.start(view.number, COLLEAGUE)
    page = staff.post_form(
        f"/tickets/{view.number}/do/reply", text=typed, expected_version=view.version
    )
    assert page.status_code == 409
    html = page.text
    assert f">{typed}</textarea>" in html  # what was typed is still in the reply box
    box = html[html.index('class="problem conflict"') :]
    box = box[: box.index("</div>")]
    assert "env9（部门工作人员 · 市生态环境局）" in box and M["event.start"] in box
    assert M["conflict.apply"] in html
    assert version_on(html) == view.version + 1  # submitting again applies it on this version
    again = staff.post_form(
        f"/tickets/{view.number}/do/reply", text=typed, expected_version=version_on(html)
    )
    assert again.status_code == 303
    assert store.get(view.number).reply == typed


def test_every_action_ends_with_a_notice(as_user: Any, store: TicketStore) -> None:
    disp, staff, boss = as_user("disp"), as_user("env1"), as_user("boss")
    view = new_ticket(store)
    other = new_ticket(store, summary="另一处烧烤油烟", sender_id="rest:citizen-y")

    def act(who: Any, action: str, **data: str) -> None:
        current = store.get(view.number)
        done = who.post_form(
            f"/tickets/{view.number}/do/{action}", expected_version=current.version, **data
        )
        assert done.status_code == 303, (action, done.text[:400])
        page = who.client.get(done.headers["location"]).text
        assert notices(page) == [M[f"done_{action}"]], action

    act(disp, "dispatch", department=ENV, category="", reason="")
    act(staff, "start")
    act(staff, "pause", reason="等待市民提供照片")
    act(staff, "resume")
    act(staff, "note", text="已电话联系")
    act(staff, "publish", text="已安排现场检查")
    act(boss, "escalate", reason="市民多次来电")
    act(disp, "transfer", department=ENV, reason="仍由本部门办理")
    act(staff, "return", reason="不属于本部门职责")
    act(disp, "dispatch", department=ENV, category="", reason="")
    act(staff, "reply", text="已处理")
    act(disp, "rate", score="5", solved="yes", comment="电话回访：满意")
    merged = disp.post_form(
        f"/tickets/{other.number}/do/merge", into=view.number, expected_version=other.version
    )
    assert merged.status_code == 303
    assert notices(disp.client.get(merged.headers["location"]).text) == [M["done_merge"]]


def test_errors_say_what_to_do_next(as_user: Any, store: TicketStore) -> None:
    view = dispatched(store, ENV)
    disp = as_user("disp")
    departments = store.departments()
    url = f"/api/tickets/{view.number}/actions/transfer"
    unknown = disp.api(
        "POST", url, json={"department": "住建局", "reason": "x", "expected_version": view.version}
    ).json()
    assert unknown["error"] == "invalid"  # the code is the API's contract
    assert "住建局" in unknown["message"] and all(d in unknown["message"] for d in departments)
    missing = disp.api("POST", url, json={"department": "", "reason": "x"}).json()
    assert missing["error"] == "department_required"
    assert all(d in missing["message"] for d in departments)
    page = disp.post_form(
        f"/tickets/{view.number}/do/transfer", department="", reason="x",
        expected_version=view.version,
    )
    text = visible(page.text)
    assert page.status_code == 422 and departments[0] in text and "x" in page.text
    assert "department_required" not in text
    staff = as_user("env1")
    paused = staff.api("POST", f"/api/tickets/{view.number}/actions/pause", json={"reason": " "})
    assert paused.json()["message"] == "请填写理由：暂停计时需要写明理由。"
    started = staff.api("POST", f"/api/tickets/{view.number}/actions/resume", json={}).json()
    assert "刷新页面" in started["message"]


@pytest.mark.parametrize(
    "exc",
    [
        TicketNotFound(messages.NOT_FOUND.format(number="GD20261127-0001")),
        IllegalTransition(messages.ILLEGAL.format(action="reply", status="closed")),
        PermissionDenied(messages.ROLE_DENIED.format(role="department", action="dispatch")),
        PermissionDenied(
            messages.OTHER_DEPARTMENT.format(
                actor="张 三", actor_department=ENV, department="市教育局"
            )
        ),
        ConflictError(messages.CONFLICT.format(number="GD20261127-0001", expected=2, actual=3)),
        InvalidInput(messages.UNKNOWN_DEPARTMENT.format(department="住建局")),
        InvalidInput(messages.REASON_REQUIRED.format(action="close")),
        InvalidInput(messages.BAD_SCORE.format(score=9)),
        InvalidInput(messages.MERGE_SELF.format(number="GD20261127-0001")),
        InvalidInput(messages.MERGE_TARGET.format(into="GD20261127-0002", status="closed")),
        InvalidInput(messages.EMPTY_TEXT),
        InvalidInput(messages.NOT_PAUSED.format(number="GD20261127-0001")),
        InvalidInput(messages.ALREADY_PAUSED.format(number="GD20261127-0001")),
    ],
)
def test_every_store_refusal_reads_as_plain_chinese(exc: Exception) -> None:
    code, params = store_text(exc)  # type: ignore[arg-type]
    assert code is not None, exc
    text = explain(M, code, str(exc), params, ["市生态环境局", "市教育局"])
    assert text and "{" not in text, text
    assert not re.search(r"[A-Za-z_]{3,}", text.replace("GD", "")), text


def test_pages_show_names_not_codes(as_user: Any, store: TicketStore) -> None:
    """Facts labelled (developer fields folded away), people and channels by name."""
    hotline = store.create(
        NewTicket(
            channel="hotline",
            kind="complaint",
            summary="来电反映建设路工地夜间施工噪音",
            phone="13712345678",
            source="hotline:call-9",
            transcript=[
                {"speaker": "agent", "text": "您好，12345热线。"},
                {"speaker": "citizen", "text": "工地晚上还在施工"},
            ],
            facts={
                "call_id": "call-9",
                "started_at": "2026-11-27T09:15:00+08:00",
                "agent": None,
                "intent": "complain",
                "reason": "intent:complain",
                "intents": ["complain", "inform"],
                "service": None,
                "truncated": False,
                "file": "calls.jsonl",
                "line": 3,
                "request_id": "req-1",
            },
        ),
        Actor.system(),
    )
    store.dispatch(hotline.number, ENV, Actor(Role.DISPATCHER, "disp"))
    chat = new_ticket(store, channel="webchat", sender_id="webchat:abc")  # auto-routed or not
    store.add_info(chat.number, "补充：每天晚上十点以后", Actor.citizen("webchat:abc"))
    staff = as_user("disp")
    staff.post_form(f"/tickets/{hotline.number}/contact")
    for number in (hotline.number, chat.number):
        html = staff.client.get(f"/tickets/{number}").text
        text = visible(html)
        assert not RAW.search(text), (number, RAW.search(text), text[:2000])
    html = staff.client.get(f"/tickets/{hotline.number}").text
    text = visible(html)
    for shown in ("通话编号", "call-9", "来电时间", "2026-11-27 09:15", "投诉、反映情况",
                  "系统自动", "查看联系方式", "disp（派单员）", "电话"):
        assert shown in text, shown
    assert "技术信息" in html and "req-1" in html and "req-1" not in text  # folded away
    chat_text = visible(staff.client.get(f"/tickets/{chat.number}").text)
    assert "市民" in chat_text and "网页" in chat_text
    assert "webchat" not in visible(staff.client.get("/queue/department?status=all").text)


def test_the_dashboard_and_its_csv_name_channels_and_statuses(
    as_user: Any, store: TicketStore
) -> None:
    for channel, sender in (("webchat", "webchat:a"), ("rest", "rest:b"), ("wechat", "wechat:c")):
        dispatched(store, ENV, channel=channel, sender_id=sender)
    dispatched(store, ENV, channel="hotline", sender_id=None)
    boss = as_user("boss")
    page = boss.client.get("/supervision")
    text = visible(page.text)
    assert page.status_code == 200
    assert not re.search(r"(?<![A-Za-z])(webchat|wechat|rest|hotline)(?![A-Za-z])", text), text
    table = page.text[page.text.index('id="table-volume-channel"') :]
    table = visible(table[: table.index("</table>")])
    assert "网页 2" in table and "微信 1" in table and "电话 1" in table
    raw = boss.client.get("/supervision/csv/volume-channel.csv").text.lstrip("\ufeff")
    header = next(csv.reader(io.StringIO(raw)))
    assert header[1:-1] == ["网页", "微信", "电话"] or set(header[1:-1]) == {"网页", "微信", "电话"}
    api = boss.client.get("/api/supervision/dashboard").json()  # the API keeps the codes
    assert {s["name"] for s in api["volume"]["channel"]["series"]} == {
        "webchat", "rest", "wechat", "hotline"
    }
    bad = boss.client.get("/supervision?since=2026-12-01&until=2026-01-01")
    assert bad.status_code == 400 and "366" in visible(bad.text)
    assert "since" not in visible(bad.text)


def test_account_errors_list_the_departments(as_user: Any, store: TicketStore) -> None:
    root = as_user("root")
    missing = root.post_form("/users", username="newbie", role="department", department="")
    text = visible(missing.text)
    assert "请选择承办部门" in text and store.departments()[0] in text
    assert "department_required" not in text
    unknown = root.post_form("/users", username="newbie", role="department", department="住建局")
    text = visible(unknown.text)
    assert "没有“住建局”这个部门" in text and store.departments()[-1] in text
    assert "unknown_department" not in text
