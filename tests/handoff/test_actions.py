"""The bot's side of 转人工, action by action (rasa_sdk trackers, a real ticket store).

Staffed or not is pinned by ``HANDOFF_HOURS`` (``always`` / ``never``), so these
run the same at any hour; the end-to-end tests are in ``test_live_stack.py``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

import actions.live as live_actions
import actions.support as support_actions
from bot.settings import Settings, load_settings
from bot.tickets import TicketStore
from bot.tickets.live import LiveStore

WHO = "webchat:0123456789abcdef0123456789abcdef"


def user(text: str, intent: str, **extra: Any) -> dict[str, Any]:
    parse = {"text": text, "intent": {"name": intent, "confidence": 0.9}, "entities": [],
             "message_id": f"m-{abs(hash(text))}", "metadata": {}, **extra}
    return {"event": "user", "text": text, "parse_data": parse, "input_channel": "webchat",
            "timestamp": 1764730000.0, "message_id": parse["message_id"]}


def bot(text: str) -> dict[str, Any]:
    return {"event": "bot", "text": text, "timestamp": 1764730001.0}


def tracker(events: list[dict[str, Any]], slots: dict[str, Any] | None = None,
            entities: list[dict[str, Any]] | None = None) -> Tracker:
    latest = dict(next(e for e in reversed(events) if e["event"] == "user")["parse_data"])
    if entities:
        latest["entities"] = entities
    return Tracker(WHO, slots or {}, latest, events, False, None, {}, "action_listen")


@pytest.fixture
def env(settings: Settings, store: TicketStore, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The actions on the test store, with HANDOFF_HOURS and the wait set per test."""
    live = LiveStore(store)
    values = {"VAR_DIR": str(settings.var_dir), "PII_KEY": settings.pii_key,
              "HANDOFF_WAIT_MINUTES": "4"}

    def configure(hours: str) -> LiveStore:
        configured = load_settings({**values, "HANDOFF_HOURS": hours})
        monkeypatch.setattr(live_actions, "get_settings", lambda: configured)
        return live

    monkeypatch.setattr(live_actions, "store", lambda: store)
    monkeypatch.setattr(support_actions, "store", lambda: store)
    monkeypatch.setattr(live_actions, "live", lambda: live)
    return configure


def run(action: Any, t: Tracker) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, t, {"responses": {}}))
    return dispatcher.messages, events


def responses(messages: list[dict[str, Any]]) -> list[str]:
    return [m["response"] for m in messages]


def slot(events: list[dict[str, Any]], name: str = live_actions.SLOT) -> Any:
    found = [e["value"] for e in events if e.get("event") == "slot" and e.get("name") == name]
    return found[-1] if found else "unset"


CHAT = [
    user("你好", "greet"), bot("您好"),
    user("那照片有什么要求吗？", "inquire"), bot("您想问的是下面哪一个？"),
    user("谢谢", "thank"), bot("不客气"),
    user("转人工", "request_human"),
]


def test_the_request_is_what_the_citizen_asked_not_the_first_message() -> None:
    assert live_actions.citizen_request(tracker(CHAT)) == "那照片有什么要求吗？"
    assert live_actions.citizen_request(tracker([user("你好", "greet"),
                                                 user("转人工", "request_human")])) == ""
    # only the current Rasa session counts
    older = [user("公积金", "inquire"), {"event": "session_started"},
             user("转人工", "request_human")]
    assert live_actions.citizen_request(tracker(older)) == ""


def test_staffed_handoff_opens_a_session_and_promises_the_queues_wait(env: Any) -> None:
    live = env("always")
    messages, events = run(support_actions.ActionHandoff(), tracker(CHAT))
    assert responses(messages) == ["utter_live_waiting"] and messages[0]["wait"] == 4
    session = live.current(WHO, messages=True)
    assert session is not None and slot(events) == str(session.id)
    assert session.request == "那照片有什么要求吗？"
    assert (session.expires_at - session.created_at).total_seconds() == pytest.approx(240, abs=1)
    assert [m.text for m in session.messages][:3] == ["你好", "您好", "那照片有什么要求吗？"]
    # asking again while waiting: the same session, no second one
    messages, events = run(support_actions.ActionHandoff(), tracker(CHAT))
    assert responses(messages) == ["utter_live_already_waiting"]
    assert slot(events) == str(session.id) and len(live.listing()) == 1


def test_off_hours_handoff_is_honest_and_files_the_request(env: Any, store: TicketStore) -> None:
    env("never")
    messages, events = run(support_actions.ActionHandoff(), tracker(CHAT))
    assert responses(messages) == ["utter_live_unstaffed", "utter_live_callback_logged"]
    number = messages[1]["number"]
    filed = store.get(number)
    assert filed.kind == "callback" and filed.summary == "那照片有什么要求吗？"
    assert filed.deadline is not None
    assert messages[1]["deadline"] == live_actions.when(filed.deadline)
    assert slot(events) is None and slot(events, "last_ticket") == number


def test_off_hours_without_a_request_asks_for_it_first(
    env: Any, store: TicketStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    env("")  # HANDOFF_HOURS empty: working hours on working days; a Saturday night is not
    saturday_night = datetime(2026, 12, 5, 22, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    monkeypatch.setattr(live_actions, "local_now", lambda: saturday_night)
    chat = [user("你好", "greet"), user("转人工", "request_human")]
    messages, events = run(support_actions.ActionHandoff(), tracker(chat))
    assert responses(messages) == ["utter_live_off_hours", "utter_live_ask_request"]
    assert messages[0]["hours"] == "09:00-17:30" and slot(events) == live_actions.ASK
    asked = {live_actions.SLOT: live_actions.ASK}
    messages, events = run(live_actions.ActionLiveMessage(),
                           tracker([*chat, user("你好", "greet")], asked))
    assert responses(messages) == ["utter_live_ask_request"] and slot(events) == "unset"
    messages, events = run(live_actions.ActionLiveMessage(),
                           tracker([*chat, user("新生儿医保怎么办", "inquire")], asked))
    assert responses(messages) == ["utter_live_callback_logged"] and slot(events) is None
    assert store.get(messages[0]["number"]).summary == "新生儿医保怎么办"


def test_citizen_messages_go_to_staff_and_danger_still_comes_first(
    env: Any, store: TicketStore
) -> None:
    live = env("always")
    chat = [user("你好", "greet"), user("转人工", "request_human")]
    run(support_actions.ActionHandoff(), tracker(chat))
    session = live.current(WHO)
    assert session is not None and session.request == ""
    slots = {live_actions.SLOT: str(session.id)}
    chat.append(user("我想问低保怎么申请", "inquire"))
    messages, _ = run(live_actions.ActionLiveMessage(), tracker(chat, slots))
    assert responses(messages) == ["utter_live_noted"]  # once: it was kept
    assert live.get(session.id).request == "我想问低保怎么申请"
    chat.append(user("还要带户口本吗", "inquire"))
    assert run(live_actions.ActionLiveMessage(), tracker(chat, slots))[0] == []
    live.take(session.id, "disp")
    picture = {"type": "image", "media_id": "m1", "url": "https://mmbiz.qpic.cn/x.jpg"}
    chat.append(user("[图片]", "nlu_fallback", metadata={"attachments": [picture]}))
    assert run(live_actions.ActionLiveMessage(), tracker(chat, slots))[0] == []
    assert live.get(session.id).messages[-1].text == "[图片]\n[图片] https://mmbiz.qpic.cn/x.jpg"
    chat.append(user("楼下着火了！", "emergency"))
    messages, events = run(live_actions.ActionLiveMessage(), tracker(chat, slots))
    assert responses(messages)[0] == "utter_emergency_fire"  # the number to call, first
    emergency = store.get(slot(events, "last_ticket"))
    assert emergency.kind == "emergency"
    kept = live.get(session.id).messages
    assert [(m.speaker, m.flag) for m in kept if m.flag != "before"][-2:] == [
        ("citizen", "emergency"), ("system", None)]
    assert emergency.number in kept[-1].text
    assert slot(events) == str(session.id)  # the person is still there


def test_cancel_while_waiting_and_a_stale_slot_let_the_bot_answer(env: Any) -> None:
    live = env("always")
    chat = [user("公积金怎么提取", "inquire"), user("转人工", "request_human")]
    run(support_actions.ActionHandoff(), tracker(chat))
    session = live.current(WHO)
    assert session is not None
    slots = {live_actions.SLOT: str(session.id)}
    messages, events = run(live_actions.ActionLiveMessage(),
                           tracker([*chat, user("算了不用了", "cancel")], slots))
    assert responses(messages) == ["utter_live_cancelled"] and slot(events) is None
    assert live.get(session.id).end_reason == "cancelled"
    # the slot still set although the session ended: the message goes back to the bot
    messages, events = run(live_actions.ActionLiveMessage(),
                           tracker([*chat, user("你好", "greet")], slots))
    assert messages == [] and [e["event"] for e in events] == ["rewind", "slot", "action", "user"]
    assert events[-1]["text"] == "你好" and events[-1]["parse_data"]["intent"]["name"] == "greet"


def test_console_updates_reach_only_the_citizens_own_conversation(env: Any) -> None:
    live = env("always")
    session = live.open(WHO, "webchat", "社保", wait_minutes=4)
    live.take(session.id, "disp")
    message = live.record(session.id, "staff", "您好，我是小王", author="disp", delivery="pending")
    entities = [{"entity": "live_id", "value": str(session.id)},
                {"entity": "live_message_id", "value": str(message.id)}]
    update = live_actions.ActionLiveUpdate()
    staff_says = [user("EXTERNAL: EXTERNAL_live_message", "EXTERNAL_live_message")]
    messages, events = run(update, tracker(staff_says, entities=entities))
    assert messages[0]["response"] == "utter_live_staff"
    assert messages[0]["message"] == "您好，我是小王"
    assert slot(events) == str(session.id)
    assert events[-1] == {"event": "followup", "name": "action_listen", "timestamp": None}
    other = Tracker("webchat:ffffffffffffffffffffffffffffffff", {},
                    {**staff_says[0]["parse_data"], "entities": entities}, staff_says, False,
                    None, {}, "action_listen")
    assert run(update, other)[0] == []  # someone else's conversation hears nothing
    live.end(session.id, "handed_back", "disp")
    ended = [user("EXTERNAL: EXTERNAL_live_ended", "EXTERNAL_live_ended")]
    messages, events = run(update, tracker(ended, {live_actions.SLOT: str(session.id)},
                                           entities=entities[:1]))
    assert responses(messages) == ["utter_live_handed_back"] and slot(events) is None
