"""WeChat end to end: wechatpy-built callbacks against ``citizenbot run`` (real model,
real action server, real ticket store); the customer-service API is the recording server.

The stack's account has an AES key, so callbacks go in safe or compatible mode
(plaintext is refused with a key; plaintext mode is tested in test_wechat_unit.py).
Conversations are ``wechat:<openid>`` (:mod:`bot.tickets.citizens`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from bot.settings import ROOT
from bot.tickets.citizens import sender_id
from connectors.wechat.texts import default_texts
from tests.channels.conftest import Account, webhook
from tests.channels.wechat_sim import message_xml, new_msg_id, new_openid
from tests.recording_server import RecordingServer
from tests.stack import Stack

pytestmark = pytest.mark.stack

TEXTS = default_texts()


def domain_text(response: str) -> str:
    """The first text of a response in the Rasa domain: the tests follow the domain."""
    for path in sorted(Path(ROOT / "bot" / "domain").glob("*.yml")):
        responses = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("responses")
        if responses and response in responses:
            return str(responses[response][0]["text"])
    raise KeyError(response)


def user_events(stack: Stack, openid: str) -> list[dict[str, Any]]:
    """The user events of a WeChat citizen's conversation (``wechat:<openid>``)."""
    # not percent-encoded: Sanic 21.12 does not decode path parameters (%3A stays %3A)
    conversation = sender_id("wechat", openid)
    tracker = httpx.get(f"{stack.rasa_url}/conversations/{conversation}/tracker",
                        params={"token": "test-token"}, timeout=30).json()
    return [e for e in tracker.get("events", []) if e.get("event") == "user"]


def test_server_verification(wechat_stack: Stack, account: Account) -> None:
    wechat = webhook(wechat_stack, account)
    query = {**wechat.signed_query(), "echostr": "echo-1234"}
    assert httpx.get(wechat.webhook_url, params=query).text == "echo-1234"
    forged = httpx.get(wechat.webhook_url, params={**query, "signature": "1" * 40})
    assert forged.status_code == 403


@pytest.mark.parametrize("mode", ["compatible", "safe"])
def test_greeting_in_every_mode(wechat_stack: Stack, account: Account, mode: str) -> None:
    wechat = webhook(wechat_stack, account)
    openid = new_openid()
    assert wechat.send("text", openid, "plain", content="你好").status == 403  # key set
    reply = wechat.send("text", openid, mode, content="你好")
    assert reply.status == 200
    assert reply.text is not None and reply.text.startswith(domain_text("utter_greet"))
    assert "1. 我要咨询" in reply.text and TEXTS.choose_hint in reply.text
    assert bool(reply.fields.get("_encrypted")) == (mode != "plain")


def test_chinese_text_and_a_numbered_choice(wechat_stack: Stack, account: Account) -> None:
    wechat = webhook(wechat_stack, account)
    openid = new_openid()
    greeting = wechat.send("text", openid, "safe", content="你好")
    assert greeting.text and greeting.text.startswith(domain_text("utter_greet"))
    choice = wechat.send("text", openid, "safe", content="2")  # "2. 我要投诉"
    assert choice.status == 200 and choice.text
    assert [e["text"] for e in user_events(wechat_stack, openid)] == ["你好", "/complain"]
    assert {e["input_channel"] for e in user_events(wechat_stack, openid)} == {"wechat"}


def test_a_resent_message_is_handled_once(wechat_stack: Stack, account: Account) -> None:
    wechat = webhook(wechat_stack, account)
    openid = new_openid()
    xml = message_xml("text", openid, content="谢谢你们", msg_id=new_msg_id())
    replies = [wechat.post_xml(xml, "safe") for _ in range(3)]  # WeChat's 3 resends
    assert replies[0].text and all(r.text == replies[0].text for r in replies)
    assert [e["text"] for e in user_events(wechat_stack, openid)] == ["谢谢你们"]


def test_forged_and_hostile_requests_change_nothing(
    wechat_stack: Stack, account: Account
) -> None:
    wechat = webhook(wechat_stack, account)
    openid = new_openid()
    xml = message_xml("text", openid, content="你好")
    query, body = wechat.envelope(xml, "safe")
    assert wechat.post_raw({**query, "signature": "e" * 40}, body).status == 403
    assert wechat.post_raw({**query, "msg_signature": "e" * 40}, body).status == 403
    aes_query = {**wechat.signed_query(), "encrypt_type": "aes"}
    xxe = (b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
           + xml.replace("你好", "&x;").encode())
    assert wechat.post_raw(aes_query, xxe).status == 400
    big = body.replace(b"</xml>", b"<Pad>" + b"x" * (1024 * 1024) + b"</Pad></xml>")
    assert wechat.post_raw(wechat.signed_query(), big).status == 413
    assert wechat.post_raw(aes_query, body[: len(body) // 2]).status == 400
    assert user_events(wechat_stack, openid) == []


def test_subscribe_welcomes(wechat_stack: Stack, account: Account) -> None:
    reply = webhook(wechat_stack, account).send("event", new_openid(), "safe",
                                                event="subscribe")
    assert reply.text and reply.text.startswith(domain_text("utter_greet"))


def test_menu_click_reaches_the_intent(wechat_stack: Stack, account: Account) -> None:
    wechat = webhook(wechat_stack, account)
    openid = new_openid()
    reply = wechat.send("event", openid, "safe", event="CLICK", key="STATUS")
    assert reply.status == 200
    assert [e["text"] for e in user_events(wechat_stack, openid)] == [TEXTS.menu["STATUS"]]
    assert user_events(wechat_stack, openid)[0]["parse_data"]["intent"]["name"] == "check_status"


def test_location_and_image_reach_the_tracker_as_metadata(
    wechat_stack: Stack, account: Account
) -> None:
    wechat = webhook(wechat_stack, account)
    openid = new_openid()
    wechat.send("location", openid, "safe", lat="30.274085", lon="120.155070",
                label="浙江省杭州市西湖区湖滨路")
    wechat.send("image", openid, "safe", media_id="MEDIA_9", url="http://mmbiz.qpic.cn/x/0")
    located, imaged = user_events(wechat_stack, openid)
    assert located["text"] == "浙江省杭州市西湖区湖滨路"
    assert located["metadata"]["location"] == {"lat": 30.274085, "lon": 120.15507,
                                               "label": "浙江省杭州市西湖区湖滨路"}
    assert imaged["text"] == TEXTS.image
    assert imaged["metadata"]["attachments"] == [
        {"type": "image", "media_id": "MEDIA_9", "url": "http://mmbiz.qpic.cn/x/0"}]


def test_unreadable_messages_get_a_polite_answer(wechat_stack: Stack, account: Account) -> None:
    wechat = webhook(wechat_stack, account)
    openid = new_openid()
    assert wechat.send("voice", openid, "safe", recognition=None).text == TEXTS.please_send_text
    assert wechat.send("video", openid, "safe").text == TEXTS.please_send_text
    heard = wechat.send("voice", openid, "safe", recognition="你好")
    assert heard.text and heard.text.startswith(domain_text("utter_greet"))
    assert [e["text"] for e in user_events(wechat_stack, openid)] == ["你好"]


def test_console_notification_reaches_wechat(
    wechat_stack: Stack, account: Account, recording: RecordingServer
) -> None:
    """The console's trigger_intent (on ``wechat:<openid>``, to the wechat output
    channel) goes out by the 客服 API to the bare OpenID."""
    openid = new_openid()
    webhook(wechat_stack, account).send("text", openid, "safe", content="谢谢")
    response = trigger(wechat_stack, openid, "greet")
    assert response.status_code == 200
    [sent] = recording.wait_sent(openid)
    assert sent.body["touser"] == openid
    assert sent.body["text"]["content"].startswith(domain_text("utter_greet"))


def test_undeliverable_notification_is_an_error(
    wechat_stack: Stack, account: Account, recording: RecordingServer
) -> None:
    """45015 (the 48-hour window is over): Rasa answers an error, so the console
    records the notification as failed, never as sent."""
    openid = new_openid()
    webhook(wechat_stack, account).send("text", openid, "safe", content="谢谢")
    recording.send_errors.append(45015)
    response = trigger(wechat_stack, openid, "greet")
    assert response.status_code >= 500
    assert "45015" in response.text and openid not in response.text
    assert len(recording.sent(openid)) == 1  # tried once, not retried


def trigger(stack: Stack, openid: str, intent: str) -> httpx.Response:
    """What the staff console sends (bot/console/notify.py)."""
    # not percent-encoded: Sanic 21.12 does not decode path parameters (%3A stays %3A)
    conversation = sender_id("wechat", openid)
    return httpx.post(f"{stack.rasa_url}/conversations/{conversation}/trigger_intent",
                      params={"token": "test-token", "output_channel": "wechat"},
                      json={"name": intent}, timeout=60)


def test_slow_turns_go_out_by_the_api(
    slow_wechat_stack: Stack, account: Account, recording: RecordingServer
) -> None:
    """With a budget no turn meets, WeChat gets "success" and the answer comes by API.

    The turn must really wait on something (here the action server, as a complaint
    does): a turn that never yields to the event loop finishes before any timer can.
    """
    wechat = webhook(slow_wechat_stack, account)
    openid = new_openid()
    xml = message_xml("text", openid, content="我要投诉", msg_id=new_msg_id())
    assert wechat.post_xml(xml, "safe").is_success
    assert wechat.post_xml(xml, "safe").is_success  # a resend: no second run
    [sent] = recording.wait_sent(openid)
    assert sent.body["msgtype"] == "text" and sent.body["text"]["content"].strip()
    assert sent.query["access_token"].startswith("token-")
    assert [e["text"] for e in user_events(slow_wechat_stack, openid)] == ["我要投诉"]
