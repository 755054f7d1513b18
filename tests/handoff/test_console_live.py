"""The 在线会话 page and API (TestClient, a Rasa stand-in): who sees and answers which
session, what the citizen's channel is asked to deliver, and what staff see of it."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import unquote

from sqlalchemy import update

from bot.console.live import lapse_idle, sweep
from bot.tickets import TicketStore
from bot.tickets.live import LiveStore
from bot.tickets.schema import live_sessions
from tests.console.conftest import ENV, login
from tests.handoff.conftest import FakeRasa

WECHAT = "wechat:o6_bmjrPTlm6_2sgVt7hMZOPfL2M"
XSS = "<script>alert(1)</script>"


def _utc_ago(**delta: float) -> datetime:
    """A stored time (naive UTC) that long ago."""
    return datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(**delta)


def _open(live: LiveStore, sender: str = WECHAT, **kwargs: Any) -> Any:
    history = [{"speaker": "citizen", "text": f"公积金怎么提取{XSS}"},
               {"speaker": "bot", "text": "以下情形可以提取……"}]
    return live.open(sender, sender.split(":")[0], "公积金怎么提取", wait_minutes=3,
                     history=history, **kwargs)


def test_a_session_shows_at_once_with_the_conversation(live_app: Any, live: LiveStore) -> None:
    session = _open(live)
    staff = login(live_app, "disp")
    listed = staff.api("GET", "/api/live").json()
    assert [s["id"] for s in listed["sessions"]] == [session.id]
    row = listed["sessions"][0]
    assert row["status"] == "waiting" and row["request"] == "公积金怎么提取"
    assert 0 < row["seconds_left"] <= 180 and listed["wait_minutes"] == 3
    detail = staff.api("GET", f"/api/live/{session.id}").json()
    assert [m["speaker"] for m in detail["messages"]] == ["citizen", "bot"]
    page = staff.client.get(f"/live?s={session.id}")
    assert page.status_code == 200 and "接入" in page.text and "公积金怎么提取" in page.text
    assert XSS not in page.text and "&lt;script&gt;" in page.text  # citizens' text is text
    assert 'href="/live"' in staff.client.get("/queue/dispatch").text  # in the navigation


def test_take_send_hand_back_reach_the_citizens_own_channel(
    live_app: Any, live: LiveStore, rasa: FakeRasa
) -> None:
    session = _open(live)
    staff = login(live_app, "disp")
    taken = staff.api("POST", f"/api/live/{session.id}/take")
    assert taken.status_code == 200, taken.text
    sent = staff.api("POST", f"/api/live/{session.id}/send", json={"text": "您好，需要身份证。"})
    assert sent.json()["delivery"] == "sent", sent.text
    back = staff.api("POST", f"/api/live/{session.id}/hand_back")
    assert back.status_code == 200
    assert rasa.intents() == ["EXTERNAL_live_taken", "EXTERNAL_live_message",
                              "EXTERNAL_live_ended"]
    for call in rasa.calls:
        # the sender id as it is in the path, the citizen's own channel, never `latest`
        assert call["path"].startswith(f"/conversations/{WECHAT}/trigger_intent?")
        assert "output_channel=wechat" in unquote(call["path"])
        assert call["body"]["entities"]["live_id"] == str(session.id)
    assert rasa.calls[1]["body"]["entities"]["live_message_id"] == str(sent.json()["message_id"])
    detail = live.get(session.id)
    assert detail.status == "ended" and detail.end_reason == "handed_back"
    staff_lines = [m for m in detail.messages if m.speaker == "staff"]
    assert [(m.text, m.author, m.delivery) for m in staff_lines] == [
        ("您好，需要身份证。", "disp", "sent")
    ]


def test_a_message_that_did_not_arrive_says_so_and_can_be_sent_again(
    live_app: Any, live: LiveStore, rasa: FakeRasa
) -> None:
    session = _open(live)
    staff = login(live_app, "disp")
    staff.api("POST", f"/api/live/{session.id}/take")
    rasa.status = 500  # e.g. WeChat refused: the 48-hour window is over
    failed = staff.api("POST", f"/api/live/{session.id}/send", json={"text": "在吗？"}).json()
    assert failed["delivery"] == "failed" and "500" in failed["delivery_error"]
    rasa.status, rasa.collected = 200, True  # the channel is not running
    again = staff.api("POST", f"/api/live/{session.id}/resend/{failed['message_id']}").json()
    assert again["delivery"] == "failed" and "not running" in again["delivery_error"]
    rasa.collected = False
    again = staff.api("POST", f"/api/live/{session.id}/resend/{failed['message_id']}").json()
    assert again["delivery"] == "sent"
    messages = staff.api("GET", f"/api/live/{session.id}").json()["messages"]
    assert [m["delivery"] for m in messages if m["speaker"] == "staff"] == ["sent"]


def test_only_whoever_took_it_answers(live_app: Any, live: LiveStore, rasa: FakeRasa) -> None:
    session = _open(live, department=ENV)
    env1, disp, boss = login(live_app, "env1"), login(live_app, "disp"), login(live_app, "boss")
    assert env1.api("POST", f"/api/live/{session.id}/take").status_code == 200
    assert disp.api("POST", f"/api/live/{session.id}/take").status_code == 409
    refused = disp.api("POST", f"/api/live/{session.id}/send", json={"text": "我来"})
    assert refused.status_code == 409
    assert boss.api("POST", f"/api/live/{session.id}/take").status_code == 403  # supervisors watch
    assert env1.api("POST", f"/api/live/{session.id}/send", json={"text": " "}).status_code == 422
    too_long = env1.api("POST", f"/api/live/{session.id}/send", json={"text": "长" * 2001})
    assert too_long.status_code == 422
    # the centre may end a seat someone left open
    assert disp.api("POST", f"/api/live/{session.id}/close").status_code == 200
    assert live.get(session.id).end_reason == "closed"
    assert rasa.intents() == ["EXTERNAL_live_taken", "EXTERNAL_live_ended"]


def test_a_department_sees_only_sessions_routed_to_it(live_app: Any, live: LiveStore) -> None:
    centre = _open(live, sender="webchat:0123456789abcdef0123456789abcdef")
    routed = _open(live, department=ENV, ticket_number="GD20261203-0001")
    other = _open(live, sender="telegram:77", department="市住房和城乡建设局")
    env1 = login(live_app, "env1")
    assert [s["id"] for s in env1.api("GET", "/api/live").json()["sessions"]] == [routed.id]
    for hidden in (centre, other):
        assert env1.api("GET", f"/api/live/{hidden.id}").status_code == 404
        assert env1.api("POST", f"/api/live/{hidden.id}/take").status_code == 404
    assert live.get(other.id).status == "waiting"
    disp = login(live_app, "disp")
    assert len(disp.api("GET", "/api/live").json()["sessions"]) == 3


def test_forms_need_the_csrf_token_and_a_login(live_app: Any, live: LiveStore) -> None:
    session = _open(live)
    staff = login(live_app, "disp")
    refused = staff.client.post(f"/live/{session.id}/take", data={}, follow_redirects=False)
    assert refused.status_code == 403 and live.get(session.id).status == "waiting"
    form = staff.post_form(f"/live/{session.id}/take")  # without JavaScript: a plain form
    assert form.status_code == 303 and form.headers["location"] == f"/live?s={session.id}"
    assert live.get(session.id).taken_by == "disp"
    staff.client.cookies.clear()
    assert staff.client.get("/api/live", headers={"Accept": "application/json"}).status_code == 401


def test_a_session_nobody_took_is_handed_to_the_bot_once_its_wait_is_over(
    live_app: Any, live: LiveStore, store: TicketStore, rasa: FakeRasa
) -> None:
    session = _open(live)
    console = live_app.state.console
    assert asyncio.run(sweep(console)) == []
    with store.engine.begin() as conn:
        conn.execute(update(live_sessions).values(expires_at=_utc_ago(minutes=1)))
    tried: dict[int, float] = {}
    assert asyncio.run(sweep(console, tried)) == [session.id]
    assert rasa.intents() == ["EXTERNAL_live_timeout"]
    assert rasa.calls[0]["path"].startswith(f"/conversations/{WECHAT}/trigger_intent")
    # still waiting (the bot did not answer here): asked again only after a pause
    assert asyncio.run(sweep(console, tried)) == []
    assert live.get(session.id).expiry_attempts == 1


def test_a_seat_idle_for_long_ends_before_rasa_forgets_the_conversation(
    live_app: Any, live: LiveStore, store: TicketStore, rasa: FakeRasa
) -> None:
    session = _open(live)
    live.take(session.id, "disp")
    console = live_app.state.console
    assert asyncio.run(lapse_idle(console)) == []
    with store.engine.begin() as conn:
        conn.execute(update(live_sessions).values(updated_at=_utc_ago(minutes=51)))
    assert asyncio.run(lapse_idle(console)) == [session.id]
    assert live.get(session.id).end_reason == "lapsed"
    assert rasa.intents() == ["EXTERNAL_live_ended"]


def test_the_centre_passes_a_session_to_a_department(live_app: Any, live: LiveStore) -> None:
    session = _open(live)
    disp, env1 = login(live_app, "disp"), login(live_app, "env1")
    assert env1.api("GET", "/api/live").json()["sessions"] == []
    assert env1.api("POST", f"/api/live/{session.id}/route",
                    json={"department": ENV}).status_code == 403
    refused = disp.api("POST", f"/api/live/{session.id}/route", json={"department": "不存在的局"})
    assert refused.status_code == 422 and live.get(session.id).department is None
    assert disp.api("POST", f"/api/live/{session.id}/route", json={"department": ENV}).json()["ok"]
    assert [s["id"] for s in env1.api("GET", "/api/live").json()["sessions"]] == [session.id]
    assert env1.api("POST", f"/api/live/{session.id}/take").status_code == 200
    assert "转部门" in disp.client.get(f"/live?s={session.id}").text
    assert "转部门" not in env1.client.get(f"/live?s={session.id}").text
