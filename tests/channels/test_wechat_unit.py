"""The WeChat channel over real HTTP (Sanic) with wechatpy-built messages and a scripted bot.

The bot is scripted here so that timing (the 5-second rule) and failures are
exact; the end-to-end tests with the real Rasa model are in test_wechat.py.
Tests whose subject is not the mode post plaintext to a channel without an AES
key (with a key, plaintext is refused: tests/security/test_wechat_forgery.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest
import redis
from wechatpy import parse_message

from bot.settings import load_settings
from bot.tickets.citizens import ForeignSender, sender_id
from bot.tickets.crypto import PiiCipher
from connectors.limits import MAX_MESSAGE_CHARS
from connectors.state import RedisStore
from connectors.wechat.api import DeliveryFailed, UndeliveredStore
from connectors.wechat.channel import DEDUPE_TTL, NONCE_TTL
from connectors.wechat.inbound import MAX_SKEW
from connectors.wechat.render import TEXT_LIMIT_BYTES
from connectors.wechat.texts import default_texts
from tests.channels.conftest import ChannelApp, MakeApp
from tests.channels.wechat_sim import message_xml, new_msg_id, new_openid
from tests.recording_server import RecordingServer

TEXTS = default_texts()


def _undelivered(app: ChannelApp) -> UndeliveredStore:
    """What the channel kept, read as an operator would (the ticket database)."""
    return UndeliveredStore(app.settings.database_url, PiiCipher(app.settings.effective_pii_keys))


def wx(openid: str) -> str:
    """The Rasa sender id of a WeChat citizen."""
    return sender_id("wechat", openid)


# -- server verification ------------------------------------------------------------------


async def test_verification_echoes_only_when_signed(channel_app: MakeApp) -> None:
    app = await channel_app()
    query = {**app.wechat.signed_query(), "echostr": "4711"}
    ok = await app.client.get(app.wechat.webhook_url, params=query)
    assert (ok.status_code, ok.text) == (200, "4711")
    forged = await app.client.get(app.wechat.webhook_url,
                                  params={**query, "signature": "0" * 40})
    assert forged.status_code == 403 and "4711" not in forged.text
    missing = await app.client.get(app.wechat.webhook_url, params={"echostr": "4711"})
    assert missing.status_code == 403


# -- the three modes --------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["plain", "compatible", "safe"])
async def test_text_round_trip_in_every_mode(channel_app: MakeApp, mode: str) -> None:
    app = await channel_app(aes=mode != "plain")
    openid, msg_id = new_openid(), new_msg_id()
    reply = await app.wechat.asend(app.client, "text", openid, mode, content="路灯坏了",
                                   msg_id=msg_id)
    assert reply.status == 200
    assert reply.text == "收到：路灯坏了"
    assert reply.fields["ToUserName"] == openid  # answered to the citizen …
    assert reply.fields["FromUserName"] == "gh_citizenbot01"  # … from the account
    assert bool(reply.fields.get("_encrypted")) == (mode != "plain")
    [received] = app.bot.received
    assert (received.sender_id, received.input_channel) == (wx(openid), "wechat")
    assert received.message_id == str(msg_id)


async def test_compatible_mode_without_key_reads_the_plaintext(channel_app: MakeApp) -> None:
    app = await channel_app(aes=False)
    openid = new_openid()
    reply = await app.wechat.asend(app.client, "text", openid, "compatible", content="你好")
    assert reply.text == "收到：你好" and not reply.fields.get("_encrypted")


# -- forged and bad input: 4xx, nothing reaches the bot ------------------------------------


async def test_forged_signatures_are_refused(channel_app: MakeApp) -> None:
    app = await channel_app()
    xml = message_xml("text", new_openid(), content="你好")
    query, body = app.wechat.envelope(xml, "plain")
    for forged in ({**query, "signature": "f" * 40}, {k: v for k, v in query.items()
                                                       if k != "signature"}, {}):
        assert (await app.wechat.apost_raw(app.client, forged, body)).status == 403
    # safe mode: right URL signature, forged msg_signature over the ciphertext
    query, body = app.wechat.envelope(xml, "safe")
    reply = await app.wechat.apost_raw(app.client, {**query, "msg_signature": "a" * 40}, body)
    assert reply.status == 403
    # ciphertext for another AppID, correctly signed
    other = type(app.wechat)(app.wechat.webhook_url, app.wechat.token, "wx" + "0" * 16,
                             app.wechat.aes_key)
    query, body = other.envelope(xml, "safe")
    assert (await app.wechat.apost_raw(app.client, query, body)).status == 403
    assert app.bot.received == []


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&xxe;</Content><MsgId>1</MsgId></xml>"""

BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&lol3;</Content><MsgId>2</MsgId></xml>"""


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"<xml><ToUserName>gh</ToUserName><Content>unclosed", 400),
        (b"", 400),
        (b"not xml at all", 400),
        (XXE, 400),
        (BOMB, 400),
        ("<xml><ToUserName>gh</ToUserName><FromUserName>o</FromUserName><CreateTime>1"
         "</CreateTime><MsgType>text</MsgType><Content>你好</Content><MsgId>3</MsgId></xml>"
         .encode("gbk"), 400),
        ("<xml><MsgType>text</MsgType></xml>".encode("utf-16"), 400),
        (b"<xml><ToUserName>gh</ToUserName><FromUserName>o</FromUserName>"
         b"<CreateTime>yesterday</CreateTime><MsgType>text</MsgType><MsgId>x</MsgId></xml>", 400),
        (b"<xml><a>" + b"x" * (1024 * 1024) + b"</a></xml>", 413),
    ],
    ids=["truncated", "empty", "not-xml", "xxe", "billion-laughs", "gbk", "utf16",
         "bad-fields", "1MB"],
)
async def test_bad_input_is_refused(channel_app: MakeApp, body: bytes, status: int) -> None:
    app = await channel_app(aes=False)
    reply = await app.wechat.apost_raw(app.client, app.wechat.signed_query(), body)
    assert reply.status == status
    assert app.bot.received == []


@pytest.mark.parametrize("document", [XXE, BOMB], ids=["xxe", "billion-laughs"])
def test_wechatpy_parser_itself_refuses_entities(document: bytes) -> None:
    """Why the DOCTYPE guard is a second line: xmltodict already forbids entities."""
    with pytest.raises(ValueError, match="entities"):
        parse_message(document)


async def test_encrypted_bad_input_is_refused(channel_app: MakeApp) -> None:
    app = await channel_app()
    query, _ = app.wechat.envelope(message_xml("text", new_openid(), content="x"), "safe")
    for body in (XXE, b"<xml><Encrypt><![CDATA[not base64 at all!]]></Encrypt></xml>"):
        reply = await app.wechat.apost_raw(app.client, query, body)
        assert reply.status in (400, 403)
    assert app.bot.received == []


# -- dedupe -------------------------------------------------------------------------------


async def test_a_resent_message_runs_once_and_gets_the_same_reply(channel_app: MakeApp) -> None:
    app = await channel_app()
    openid = new_openid()
    xml = message_xml("text", openid, content="井盖丢了", msg_id=new_msg_id())
    first = await app.wechat.apost_xml(app.client, xml, "safe")
    again = await app.wechat.apost_xml(app.client, xml, "safe")
    assert first.text == again.text == "收到：井盖丢了"
    assert app.bot.texts_from(wx(openid)) == ["井盖丢了"]


async def test_a_resend_during_processing_does_not_start_a_second_run(
    channel_app: MakeApp,
) -> None:
    app = await channel_app(timeout=2.0, aes=False)
    app.bot.delay = 0.4
    openid = new_openid()
    xml = message_xml("text", openid, content="噪音扰民", msg_id=new_msg_id())

    async def resend_later() -> object:
        await asyncio.sleep(0.1)
        return await app.wechat.apost_xml(app.client, xml)

    first, again = await asyncio.gather(app.wechat.apost_xml(app.client, xml), resend_later())
    assert first.text == "收到：噪音扰民"
    assert again.text in ("收到：噪音扰民", None)  # type: ignore[attr-defined]
    assert app.bot.texts_from(wx(openid)) == ["噪音扰民"]


async def test_events_are_deduplicated_by_sender_and_time(channel_app: MakeApp) -> None:
    app = await channel_app(aes=False)
    openid = new_openid()
    xml = message_xml("event", openid, event="subscribe", create_time=1_760_000_000)
    await app.wechat.apost_xml(app.client, xml)
    await app.wechat.apost_xml(app.client, xml)
    assert app.bot.texts_from(wx(openid)) == [TEXTS.subscribe]
    later = message_xml("event", openid, event="subscribe", create_time=1_760_000_060)
    await app.wechat.apost_xml(app.client, later)
    assert app.bot.texts_from(wx(openid)) == [TEXTS.subscribe] * 2


def _redis_available() -> bool:
    try:
        return bool(redis.Redis(socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


@pytest.mark.redis
@pytest.mark.skipif(not _redis_available(), reason="no Redis on 127.0.0.1:6379")
async def test_dedupe_across_servers_through_redis(channel_app: MakeApp) -> None:
    """Two channel servers (two Rasa processes) sharing Redis handle a MsgId once."""
    url = "redis://127.0.0.1:6379/15"
    one = await channel_app(store=RedisStore(url), aes=False)
    two = await channel_app(store=RedisStore(url), aes=False)
    openid = new_openid()
    xml = message_xml("text", openid, content="路面塌陷", msg_id=new_msg_id())
    first = await one.wechat.apost_xml(one.client, xml)
    again = await two.wechat.apost_xml(two.client, xml)
    assert first.text == again.text == "收到：路面塌陷"
    assert one.bot.texts_from(wx(openid)) == ["路面塌陷"] and two.bot.received == []


async def test_redis_down_falls_back_to_this_servers_memory(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Redis unreachable: claims still hold within this server (dedupe and the replay
    guard keep working here), reads see what was written, nothing raises."""
    store = RedisStore("redis://127.0.0.1:1/0")  # nothing listens on port 1
    assert await store.claim("k", "first", 60) is True
    assert await store.claim("k", "second", 60) is False
    assert await store.get("k") == "first"
    await store.set("b", "x", 60)
    assert await store.get("b") == "x"
    await store.delete("b")
    assert await store.get("b") is None
    assert "Redis unavailable" in caplog.text


# -- message types ------------------------------------------------------------------------


async def test_voice_uses_recognition_else_asks_for_text(channel_app: MakeApp) -> None:
    app = await channel_app(aes=False)
    openid = new_openid()
    heard = await app.wechat.asend(app.client, "voice", openid, recognition="我要投诉噪音。")
    assert heard.text == "收到：我要投诉噪音。"
    [message] = app.bot.received
    assert message.metadata == {"voice": True}
    unheard = await app.wechat.asend(app.client, "voice", openid, recognition=None)
    assert unheard.text == TEXTS.please_send_text
    assert len(app.bot.received) == 1


async def test_location_becomes_the_place(channel_app: MakeApp) -> None:
    app = await channel_app(aes=False)
    openid = new_openid()
    await app.wechat.asend(app.client, "location", openid, lat="31.230416", lon="121.473701",
                           label="上海市黄浦区人民大道200号")
    [message] = app.bot.received
    assert message.text == "上海市黄浦区人民大道200号"
    assert message.metadata == {"location": {"lat": 31.230416, "lon": 121.473701,
                                             "label": "上海市黄浦区人民大道200号"}}
    await app.wechat.asend(app.client, "location", openid, lat="31.2", lon="121.4", label="")
    assert app.bot.received[-1].text == TEXTS.location


async def test_image_is_kept_as_evidence(channel_app: MakeApp) -> None:
    app = await channel_app(aes=False)
    openid = new_openid()
    await app.wechat.asend(app.client, "image", openid, media_id="MEDIA_123",
                           url="http://mmbiz.qpic.cn/abc/0")
    [message] = app.bot.received
    assert message.text == TEXTS.image
    assert message.metadata == {"attachments": [
        {"type": "image", "media_id": "MEDIA_123", "url": "http://mmbiz.qpic.cn/abc/0"}]}


async def test_menu_clicks_and_other_events(channel_app: MakeApp) -> None:
    app = await channel_app(aes=False)
    openid = new_openid()
    await app.wechat.asend(app.client, "event", openid, event="CLICK", key="COMPLAIN")
    assert app.bot.texts_from(wx(openid)) == [TEXTS.menu["COMPLAIN"]]
    unknown = await app.wechat.asend(app.client, "event", openid, event="CLICK", key="NOPE",
                                     create_time=int(time.time()) + 1)
    assert unknown.text == TEXTS.unknown_menu
    for event in ("VIEW", "unsubscribe", "LOCATION"):
        reply = await app.wechat.asend(app.client, "event", openid, event=event,
                                       key="http://x", create_time=int(time.time()) + 2)
        assert reply.is_success, event
    video = await app.wechat.asend(app.client, "video", openid)
    assert video.text == TEXTS.please_send_text
    assert len(app.bot.received) == 1


# -- replies ------------------------------------------------------------------------------


async def test_buttons_become_numbers_and_a_digit_picks_one(channel_app: MakeApp) -> None:
    app = await channel_app(aes=False)
    openid = new_openid()
    app.bot.replies["菜单"] = [{"text": "请选择：", "buttons": [
        {"title": "我要咨询", "payload": "我想咨询个事"},
        {"title": "我要投诉", "payload": "/complain"}]}]
    reply = await app.wechat.asend(app.client, "text", openid, content="菜单")
    assert reply.text == f"请选择：\n1. 我要咨询\n2. 我要投诉\n{TEXTS.choose_hint}"
    await app.wechat.asend(app.client, "text", openid, content="２")  # full-width digit
    assert app.bot.received[-1].text == "/complain"
    assert app.bot.received[-1].metadata == {"wechat_choice": 2}
    # that turn had no buttons, so a bare digit is a digit again
    await app.wechat.asend(app.client, "text", openid, content="2")
    assert app.bot.received[-1].text == "2"


async def test_several_messages_join_into_one_passive_reply(channel_app: MakeApp) -> None:
    app = await channel_app(aes=False)
    app.bot.replies["两条"] = [{"text": "第一条。"}, {"text": "第二条。"}]
    reply = await app.wechat.asend(app.client, "text", new_openid(), content="两条")
    assert reply.text == "第一条。\n\n第二条。"


async def test_a_long_answer_is_split_and_the_rest_sent_by_api(
    channel_app: MakeApp, recording: RecordingServer
) -> None:
    app = await channel_app(aes=False)
    openid = new_openid()
    sentence = "根据有关规定，申请人应当携带身份证原件到窗口办理。"
    app.bot.replies["长"] = [{"text": sentence * 60}]
    reply = await app.wechat.asend(app.client, "text", openid, content="长")
    assert reply.text is not None and reply.text.endswith("。")
    assert len(reply.text.encode()) <= TEXT_LIMIT_BYTES
    rest = await asyncio.to_thread(recording.wait_sent, openid, 2)  # 4500 bytes: 3 texts
    texts = [reply.text, *recording.sent_texts(openid)]
    assert all(len(t.encode()) <= TEXT_LIMIT_BYTES for t in texts)
    assert "".join(texts) == sentence * 60
    assert rest[0].body["msgtype"] == "text"


async def test_a_failing_bot_gets_a_polite_answer(channel_app: MakeApp) -> None:
    app = await channel_app(aes=False)
    reply = await app.wechat.asend(app.client, "text", new_openid(), content="boom")
    assert reply.text == TEXTS.service_error


# -- the 5-second rule and the customer-service API -------------------------------------------


async def test_a_slow_turn_answers_success_and_arrives_by_api(
    channel_app: MakeApp, recording: RecordingServer
) -> None:
    app = await channel_app(timeout=0.2, aes=False)
    app.bot.delay = 0.8
    openid = new_openid()
    app.bot.replies["慢"] = [{"text": "第一条。"}, {"text": "请选择", "buttons": [
        {"title": "是", "payload": "/affirm"}, {"title": "否", "payload": "/deny"}]}]
    began = time.monotonic()
    reply = await app.wechat.asend(app.client, "text", openid, content="慢")
    assert reply.is_success
    assert time.monotonic() - began < 0.7  # answered inside the budget, not after the bot
    [sent] = await asyncio.to_thread(recording.wait_sent, openid, 1)
    assert sent.body == {"touser": openid, "msgtype": "text", "text": {
        "content": f"第一条。\n\n请选择\n1. 是\n2. 否\n{TEXTS.choose_hint}"}}
    assert sent.query["access_token"].startswith("token-")
    # the choice works after an API-delivered turn too
    app.bot.delay = 0
    await app.wechat.asend(app.client, "text", openid, content="1")
    assert app.bot.received[-1].text == "/affirm"


async def test_token_is_fetched_once_and_reused(
    channel_app: MakeApp, recording: RecordingServer
) -> None:
    app = await channel_app()
    output = app.channel.get_output_channel()
    before = recording.token_calls()
    for n in range(3):
        await output.send_text_message(wx("o-token-user"), f"通知{n}")
    assert recording.token_calls() - before <= 1
    assert recording.sent_texts("o-token-user") == ["通知0", "通知1", "通知2"]


async def test_transient_errors_are_retried(
    channel_app: MakeApp, recording: RecordingServer
) -> None:
    app = await channel_app()
    openid = new_openid()
    recording.send_errors.extend([-1, -1])
    await app.channel.get_output_channel().send_text_message(wx(openid), "您的工单已受理。")
    assert len(recording.sent(openid)) == 3
    assert _undelivered(app).all() == []


@pytest.mark.parametrize("errcode", [45015, 45047])
async def test_closed_window_or_quota_keeps_the_message(
    channel_app: MakeApp, recording: RecordingServer, caplog: pytest.LogCaptureFixture,
    errcode: int,
) -> None:
    app = await channel_app()
    openid = new_openid()
    recording.send_errors.append(errcode)
    caplog.set_level(logging.INFO)
    text = "工作人员将致电13812345678与您联系。"
    # raised, so Rasa's trigger_intent answers an error and the console shows "failed"
    with pytest.raises(DeliveryFailed) as failed:
        await app.channel.get_output_channel().send_text_message(wx(openid), text)
    assert failed.value.errcode == errcode
    assert openid not in str(failed.value) and "138" not in str(failed.value)
    assert len(recording.sent(openid)) == 1  # not retried
    kept = [u for u in _undelivered(app).all()
            if u.openid == openid]
    assert [(u.text, u.errcode) for u in kept] == [(text, errcode)]
    assert "13812345678" not in caplog.text and "138****5678" in caplog.text
    assert openid not in caplog.text


async def test_console_notification_with_buttons(
    channel_app: MakeApp, recording: RecordingServer
) -> None:
    """trigger_intent?output_channel=latest reaches the citizen through WeChatOutput."""
    app = await channel_app(aes=False)
    openid = new_openid()
    output = app.channel.get_output_channel()
    assert output.name() == "wechat"
    await output.send_response(wx(openid), {"text": "您的工单已办结，满意吗？", "buttons": [
        {"title": "满意", "payload": "/solved"}, {"title": "不满意", "payload": "/not_solved"}]})
    assert recording.sent_texts(openid) == [
        f"您的工单已办结，满意吗？\n1. 满意\n2. 不满意\n{TEXTS.choose_hint}"]
    await app.wechat.asend(app.client, "text", openid, content="2")
    assert app.bot.received[-1].text == "/not_solved"


async def test_notifications_go_only_to_wechat_senders(
    channel_app: MakeApp, recording: RecordingServer
) -> None:
    """A sender id of another channel (or a bare id) cannot be reached through WeChat."""
    app = await channel_app()
    output = app.channel.get_output_channel()
    openid = new_openid()
    for foreign in (openid, sender_id("rest", openid), sender_id("telegram", 4711), ""):
        with pytest.raises(ForeignSender):
            await output.send_text_message(foreign, "您的工单已办结。")
    assert recording.sent(openid) == []


async def test_buttons_of_an_undelivered_notification_are_not_remembered(
    channel_app: MakeApp, recording: RecordingServer
) -> None:
    """The citizen never saw those choices: a later digit must stay a digit."""
    app = await channel_app(aes=False)
    openid = new_openid()
    recording.send_errors.append(45015)
    with pytest.raises(DeliveryFailed):
        await app.channel.get_output_channel().send_response(wx(openid), {
            "text": "满意吗？", "buttons": [{"title": "满意", "payload": "/solved"}]})
    await app.wechat.asend(app.client, "text", openid, content="1")
    assert app.bot.received[-1].text == "1"


@pytest.mark.parametrize("kind", ["text", "voice"])
async def test_long_texts_are_cut_before_the_bot(channel_app: MakeApp, kind: str) -> None:
    app = await channel_app(aes=False)
    openid = new_openid()
    long_text = "我要反映小区噪音问题。" * 500  # 5,500 characters
    field = {"content": long_text} if kind == "text" else {"recognition": long_text}
    reply = await app.wechat.asend(app.client, kind, openid, **field)
    assert reply.status == 200
    [message] = app.bot.received
    assert message.text == long_text[:MAX_MESSAGE_CHARS]


def test_memories_outlive_every_acceptable_replay() -> None:
    """A triple is accepted for up to 2 × MAX_SKEW after it is first seen; the nonce
    record and the dedupe entry (which answers a byte-identical replay) must last
    at least that long, or a replay late in the window would run the bot again."""
    assert NONCE_TTL >= 2 * MAX_SKEW
    assert DEDUPE_TTL >= 2 * MAX_SKEW


def test_operators_list_undelivered_messages_masked_and_delete_them(tmp_path: Path) -> None:
    """`citizenbot wechat undelivered`: one place for every server's refusals, PII hidden."""
    import os
    import subprocess
    import sys

    from cryptography.fernet import Fernet

    env = {**os.environ, "VAR_DIR": str(tmp_path), "PII_KEY": Fernet.generate_key().decode()}
    env.pop("DATABASE_URL", None)
    settings = load_settings(env)
    store = UndeliveredStore(settings.database_url, PiiCipher(settings.effective_pii_keys))
    text = "工作人员将致电13812345678与您联系。"
    store.keep("o-undelivered-citizen-1", text, 45015, "out of window")
    cli = [str(Path(sys.executable).with_name("citizenbot")), "wechat", "undelivered"]
    listed = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert "45015" in listed.stdout and "138****5678" in listed.stdout
    assert "13812345678" not in listed.stdout and "o-undelivered-citizen-1" not in listed.stdout
    [kept] = store.all()
    assert kept.text == text  # still re-sendable
    deleted = subprocess.run([*cli, "--delete", str(kept.id)], env=env, capture_output=True,
                             text=True, timeout=120)
    assert deleted.returncode == 0, deleted.stderr
    assert store.all() == []
    store.dispose()
