"""Issue 16, WeChat: forged, replayed, downgraded and oversized callbacks, as an attacker
sends them.

Every message is built by wechatpy exactly as WeChat builds it
(:mod:`tests.channels.wechat_sim`) and posted over HTTP to the real
:class:`~connectors.wechat.WeChatInput` in a real Sanic server; the bot is the
scripted stand-in of :mod:`tests.channels.conftest`, so "nothing reached the
bot" is exact. Each attack asserts the refusal (status) and that nothing
stored changed: no dedupe claim for the forged message, the (timestamp, nonce)
record still that of the genuine message, no button memory. The replay guard
is tested on the in-process store and on the real Redis (127.0.0.1:6379),
including across two servers sharing it.

What the signatures prove: ``signature`` = SHA1(token, timestamp, nonce)
covers no byte of the body; ``msg_signature`` also covers ``<Encrypt>``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from wechatpy import parse_message

from bot.settings import load_settings
from bot.tickets import TicketStore
from bot.tickets.citizens import sender_id
from connectors.limits import MAX_MESSAGE_CHARS
from connectors.state import MemoryStore, RedisStore, TTLStore
from connectors.wechat.channel import dedupe_id
from connectors.wechat.inbound import Inbound
from tests.channels import conftest as channels
from tests.channels.conftest import ChannelApp, MakeApp
from tests.channels.wechat_sim import message_xml, new_msg_id, new_openid
from tests.stack import Stack

# The channel tests' fixtures, shared rather than copied: the recording stand-in
# for api.weixin.qq.com, one Official Account, and the channel in a real Sanic app.
recording = channels.recording
account = channels.account
channel_app = channels.channel_app
wechat_stack = channels.wechat_stack

REDIS_URL = "redis://127.0.0.1:6379/15"
#: 2001-01-01T00:00:00Z, the timestamp of the issue's probe
YEAR_2001 = "978307200"


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def store_kind(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "redis":
        # a real server, not a skip: the claim is about Redis
        assert redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    yield str(request.param)


def make_store(kind: str) -> TTLStore:
    return RedisStore(REDIS_URL) if kind == "redis" else MemoryStore()


async def dedupe_state(app: ChannelApp, xml: str) -> str | None:
    """The dedupe entry of a message: None when the channel never claimed it."""
    return await app.channel.store.get(app.channel._key("seen:" + dedupe_id(parse_message(xml))))


async def nonce_state(app: ChannelApp, query: dict[str, str]) -> str | None:
    """The fingerprint stored for a signed (timestamp, nonce), or None."""
    probe = Inbound(message=None, encrypted=False, nonce=query["nonce"],  # type: ignore[arg-type]
                    timestamp=int(query["timestamp"]))
    return await app.channel.store.get(app.channel._key(probe.replay_key))


def wx(openid: str) -> str:
    return sender_id("wechat", openid)


# -- a replayed (signature, timestamp, nonce) triple ---------------------------------------


@pytest.mark.parametrize("mode", ["plain", "safe"])
async def test_replayed_triple_with_another_body_is_refused(
    channel_app: MakeApp, store_kind: str, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The triple of one genuine callback, seen in a log, reused for the attacker's body.

    In plaintext mode (no AES key) the signature does not cover the body, so
    only the nonce memory stops it; in safe mode msg_signature stops it too.
    The refusal is logged without personal data.
    """
    caplog.set_level(logging.DEBUG, logger="connectors.wechat")
    app = await channel_app(store=make_store(store_kind), aes=mode == "safe")
    citizen = new_openid()
    genuine_xml = message_xml("text", citizen, content="小区门口路灯坏了", msg_id=new_msg_id())
    query, body = app.wechat.envelope(genuine_xml, mode)
    first = await app.wechat.apost_raw(app.client, query, body)
    assert first.status == 200 and first.text == "收到：小区门口路灯坏了"
    recorded = await nonce_state(app, query)
    assert recorded

    # the attacker: same query, a body of their own, speaking as the citizen
    forged_xml = message_xml("text", citizen, content="我要撤销我的投诉", msg_id=new_msg_id())
    _, forged_body = app.wechat.envelope(forged_xml, mode)
    forged_query = dict(query)  # signature, timestamp, nonce (and msg_signature) replayed
    refused = await app.wechat.apost_raw(app.client, forged_query, forged_body)
    assert refused.status == 403
    assert app.bot.texts_from(wx(citizen)) == ["小区门口路灯坏了"]
    assert await dedupe_state(app, forged_xml) is None
    assert await nonce_state(app, query) == recorded
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert refusals and all(r.levelno == logging.WARNING for r in refusals)
    for record in refusals:
        assert citizen not in record.getMessage() and citizen[:6] not in record.getMessage()
        assert "撤销" not in record.getMessage() and query["nonce"] not in record.getMessage()


@pytest.mark.parametrize("mode", ["plain", "compatible", "safe"])
async def test_resend_under_the_same_triple_is_answered_once(
    channel_app: MakeApp, store_kind: str, mode: str
) -> None:
    """If WeChat resends with the same query (undocumented either way), the citizen
    gets the first run's answer and the bot runs once: the nonce guard lets the
    same message through to MsgId dedupe."""
    app = await channel_app(store=make_store(store_kind), aes=mode != "plain")
    citizen = new_openid()
    query, body = app.wechat.envelope(
        message_xml("text", citizen, content="噪音扰民", msg_id=new_msg_id()), mode)
    replies = [await app.wechat.apost_raw(app.client, query, body) for _ in range(3)]
    assert [r.status for r in replies] == [200] * 3
    assert {r.text for r in replies} == {"收到：噪音扰民"}
    assert app.bot.texts_from(wx(citizen)) == ["噪音扰民"]


@pytest.mark.redis
async def test_replay_to_another_server_is_refused_through_redis(channel_app: MakeApp) -> None:
    """Two Rasa servers behind a load balancer: the replay lands on the other one."""
    assert redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    one = await channel_app(store=RedisStore(REDIS_URL), aes=False)
    two = await channel_app(store=RedisStore(REDIS_URL), aes=False)
    citizen = new_openid()
    query, body = one.wechat.envelope(
        message_xml("text", citizen, content="井盖丢了", msg_id=new_msg_id()), "plain")
    assert (await one.wechat.apost_raw(one.client, query, body)).status == 200
    forged_xml = message_xml("text", citizen, content="问题已解决", msg_id=new_msg_id())
    _, forged = two.wechat.envelope(forged_xml, "plain")
    assert (await two.wechat.apost_raw(two.client, query, forged)).status == 403
    assert two.bot.received == []
    assert await dedupe_state(two, forged_xml) is None
    # WeChat's resend of the genuine message reaching the other server: same answer, one run
    again = await two.wechat.apost_raw(two.client, query, body)
    assert again.status == 200 and again.text == "收到：井盖丢了"
    assert one.bot.texts_from(wx(citizen)) == ["井盖丢了"] and two.bot.received == []


# -- stale and future timestamps -----------------------------------------------------------


@pytest.mark.parametrize("mode", ["plain", "safe"])
@pytest.mark.parametrize("when", ["2001", "an hour ago", "an hour ahead"])
async def test_timestamp_outside_five_minutes_is_refused(
    channel_app: MakeApp, mode: str, when: str
) -> None:
    app = await channel_app(store=MemoryStore(), aes=mode == "safe")
    now = int(time.time())
    timestamp = {"2001": YEAR_2001, "an hour ago": str(now - 3600),
                 "an hour ahead": str(now + 3600)}[when]
    citizen = new_openid()
    xml = message_xml("text", citizen, content="我要投诉", msg_id=new_msg_id())
    query, body = app.wechat.envelope(xml, mode, timestamp=timestamp)
    reply = await app.wechat.apost_raw(app.client, query, body)
    assert reply.status == 403
    assert app.bot.received == []
    assert await dedupe_state(app, xml) is None
    assert await nonce_state(app, query) is None
    # the server-verification GET is held to the same window
    echo = await app.client.get(app.wechat.webhook_url,
                                params={**app.wechat.signed_query(timestamp), "echostr": "e1"})
    assert echo.status_code == 403 and "e1" not in echo.text


async def test_clock_skew_within_the_window_is_accepted(channel_app: MakeApp) -> None:
    """WeChat's and our clocks differ by seconds, not minutes; four minutes is still fine."""
    app = await channel_app(store=MemoryStore())
    citizen = new_openid()
    for skew in (-240, 240):
        reply = await app.wechat.apost_raw(app.client, *app.wechat.envelope(
            message_xml("text", citizen, content=f"偏差{skew}", msg_id=new_msg_id()), "safe",
            timestamp=str(int(time.time()) + skew)))
        assert reply.status == 200
    assert app.bot.texts_from(wx(citizen)) == ["偏差-240", "偏差240"]


# -- downgrade: plaintext while an AES key is configured -----------------------------------


async def test_plaintext_post_is_refused_when_a_key_is_set(channel_app: MakeApp) -> None:
    app = await channel_app(store=MemoryStore())
    citizen = new_openid()
    xml = message_xml("text", citizen, content="把我的工单改成已解决", msg_id=new_msg_id())
    query, body = app.wechat.envelope(xml, "plain")  # correctly signed, fresh
    reply = await app.wechat.apost_raw(app.client, query, body)
    assert reply.status == 403
    assert app.bot.received == []
    assert await dedupe_state(app, xml) is None
    assert await nonce_state(app, query) is None


async def test_aes_post_without_encrypt_is_refused_when_a_key_is_set(
    channel_app: MakeApp,
) -> None:
    """``encrypt_type=aes`` with only the plaintext fields (compatible mode minus the
    ciphertext): the fields are covered by no signature."""
    app = await channel_app(store=MemoryStore())
    citizen = new_openid()
    xml = message_xml("text", citizen, content="把我的工单改成已解决", msg_id=new_msg_id())
    query, _ = app.wechat.envelope(xml, "safe")
    reply = await app.wechat.apost_raw(app.client, query, xml.encode("utf-8"))
    assert reply.status == 403
    no_signature = {k: v for k, v in query.items() if k != "msg_signature"}
    assert (await app.wechat.apost_raw(app.client, no_signature, xml.encode())).status == 403
    assert app.bot.received == []
    assert await dedupe_state(app, xml) is None


async def test_a_refused_downgrade_does_not_burn_the_genuine_triple(
    channel_app: MakeApp,
) -> None:
    """An attacker who front-runs WeChat with a refused post must not make the genuine
    message (same timestamp and nonce) look like a replay: nothing is lost."""
    app = await channel_app(store=MemoryStore())
    citizen = new_openid()
    genuine = message_xml("text", citizen, content="垃圾没人清运", msg_id=new_msg_id())
    query, body = app.wechat.envelope(genuine, "safe")
    downgrade = {k: v for k, v in query.items() if k not in ("encrypt_type", "msg_signature")}
    forged = message_xml("text", citizen, content="不用处理了", msg_id=new_msg_id())
    assert (await app.wechat.apost_raw(app.client, downgrade, forged.encode())).status == 403
    reply = await app.wechat.apost_raw(app.client, query, body)
    assert reply.status == 200 and reply.text == "收到：垃圾没人清运"
    assert app.bot.texts_from(wx(citizen)) == ["垃圾没人清运"]


async def test_compatible_mode_reads_only_the_ciphertext(channel_app: MakeApp) -> None:
    """Compatible mode carries plaintext fields beside <Encrypt>; an intermediary that
    rewrites them (content, sender) changes nothing: only the decrypted message counts."""
    app = await channel_app(store=MemoryStore())
    citizen, stranger = new_openid(), new_openid()
    xml = message_xml("text", citizen, content="我家楼下漏水", msg_id=new_msg_id())
    query, body = app.wechat.envelope(xml, "compatible")
    tampered = body.replace(citizen.encode(), stranger.encode()).replace(
        "我家楼下漏水".encode(), "撤销全部投诉".encode())
    assert tampered.count(stranger.encode()) == 1  # the plaintext field, not the ciphertext
    reply = await app.wechat.apost_raw(app.client, query, tampered)
    assert reply.status == 200 and reply.fields.get("_encrypted")
    [received] = app.bot.received
    assert (received.sender_id, received.text) == (wx(citizen), "我家楼下漏水")


# -- a 50,000-character message ---------------------------------------------------------------


@pytest.mark.parametrize("kind", ["text", "voice"])
async def test_fifty_thousand_characters_are_cut_and_answered(
    channel_app: MakeApp, kind: str
) -> None:
    app = await channel_app(store=MemoryStore())
    citizen = new_openid()
    huge = ("我要投诉小区旁边的工地夜间施工噪音。" * 2800)[:50_000]
    fields = {"content": huge} if kind == "text" else {"recognition": huge}
    xml = message_xml(kind, citizen, msg_id=new_msg_id(), **fields)
    health_url = app.wechat.webhook_url.rsplit("/", 1)[0] + "/"

    async def healthy() -> None:
        answer = await app.client.get(health_url)
        assert answer.status_code == 200 and answer.json() == {"status": "ok"}

    reply, _ = await asyncio.gather(app.wechat.apost_xml(app.client, xml, "safe"), healthy())
    assert reply.status == 200 and reply.text is not None
    [received] = app.bot.received
    assert received.text == huge[:MAX_MESSAGE_CHARS]
    assert len(received.text or "") == MAX_MESSAGE_CHARS
    # and the next citizen is served as usual
    other = new_openid()
    after = await app.wechat.asend(app.client, "text", other, "safe", content="你好")
    assert after.text == "收到：你好"


# -- the same attacks against citizenbot run ------------------------------------------------


def user_texts(stack: Stack, openid: str) -> list[str]:
    # not percent-encoded: Sanic 21.12 does not decode path parameters (%3A stays %3A)
    conversation = wx(openid)
    tracker = httpx.get(f"{stack.rasa_url}/conversations/{conversation}/tracker",
                        params={"token": "test-token"}, timeout=30).json()
    return [e["text"] for e in tracker.get("events", []) if e.get("event") == "user"]


@pytest.mark.stack
def test_forgeries_change_nothing_in_the_running_stack(
    wechat_stack: Stack, account: channels.Account
) -> None:
    """Real Rasa, action server and ticket store: each forgery is refused and leaves no
    tracker event and no ticket; a 50,000-character message is cut and answered while
    the server stays responsive."""
    wechat = channels.webhook(wechat_stack, account)
    citizen = new_openid()
    query, body = wechat.envelope(
        message_xml("text", citizen, content="你好", msg_id=new_msg_id()), "safe")
    assert wechat.post_raw(query, body).status == 200
    complaint = message_xml("text", citizen, content="我要投诉小区噪音，电话13812345678",
                            msg_id=new_msg_id())
    _, other_body = wechat.envelope(complaint, "safe")
    assert wechat.post_raw(query, other_body).status == 403  # replayed triple, other body
    plain_query = {k: v for k, v in query.items() if k not in ("encrypt_type", "msg_signature")}
    assert wechat.post_raw(plain_query, complaint.encode()).status == 403  # downgrade
    old_query, old_body = wechat.envelope(complaint, "safe", timestamp=YEAR_2001)
    assert wechat.post_raw(old_query, old_body).status == 403  # from 2001
    assert user_texts(wechat_stack, citizen) == ["你好"]
    store = TicketStore(wechat_stack.database_url, settings=load_settings(wechat_stack.env))
    try:
        assert store.list(sender_id=wx(citizen)) == []
    finally:
        store.dispose()

    huge = ("我要投诉小区旁边的工地夜间施工噪音。" * 2800)[:50_000]
    health: list[int | str] = []  # status codes, or the error, of probes during the message
    done = threading.Event()

    def probe_health() -> None:
        # No timed assertion (benchmarks measure): a blocked server fails the probe's timeout.
        while not done.is_set():
            try:
                health.append(httpx.get(f"{wechat_stack.rasa_url}/", timeout=10).status_code)
            except httpx.HTTPError as error:
                health.append(type(error).__name__)
            time.sleep(0.05)

    prober = threading.Thread(target=probe_health)
    prober.start()
    try:
        reply: Any = wechat.post_xml(message_xml("text", citizen, content=huge,
                                                 msg_id=new_msg_id()), "safe")
    finally:
        done.set()
        prober.join()
    assert reply.status == 200 and (reply.text or reply.is_success)
    texts = user_texts(wechat_stack, citizen)
    assert texts[-1] == huge[:MAX_MESSAGE_CHARS]
    assert health and set(health) == {200}
    assert wechat.send("text", new_openid(), "safe", content="你好").text
