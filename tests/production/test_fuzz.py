"""Fuzzing every parser that reads what strangers send: about 10,000 cases, in-process.

"Bad input gets a clear error and changes nothing" (DESIGN.md): each target may
refuse input only in its documented way —

* WeChat (``connectors.wechat.inbound.Verifier``): :class:`Rejected` (a 4xx);
* Telegram (``connectors.telegram.inbound.translate``): whatever ``Update.de_json``
  raises is answered 400 by the channel; a parsed update must translate;
* hotline transcripts (``connectors.hotline.formats.TranscriptReader``): a
  :class:`Problem` per bad line, never an exception;
* the staff console JSON API and Open311: any status below 500.

Signatures are computed for the fuzzed input, so garbage reaches the XML parser
and the decryption instead of stopping at the signature check. Case counts are
set so the module runs in about a minute on two cores; ``FUZZ_SCALE=10`` in the
environment multiplies them for a longer run.
"""

from __future__ import annotations

import base64
import io
import json
import os
import secrets
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SCALE = float(os.environ.get("FUZZ_SCALE", "1"))


def cases(n: int) -> Any:
    return settings(max_examples=max(1, int(n * SCALE)), deadline=None, derandomize=False,
                    suppress_health_check=list(HealthCheck), database=None)


# -- WeChat ----------------------------------------------------------------------------

TOKEN = "fuzztoken"
APPID = "wx0123456789abcdef"
AES_KEY = base64.b64encode(b"k" * 32).decode()[:43]
MSG_TYPES = ["text", "image", "voice", "video", "shortvideo", "location", "link", "event",
             "file", "", "TEXT", "未知"]
EVENTS = ["subscribe", "unsubscribe", "CLICK", "VIEW", "SCAN", "LOCATION", "", "x"]
xml_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


@st.composite
def wechat_xml(draw: Any) -> str:
    fields = {
        "ToUserName": draw(xml_text), "FromUserName": draw(xml_text),
        "CreateTime": draw(st.one_of(st.integers(-(2**63), 2**63).map(str), xml_text)),
        "MsgType": draw(st.sampled_from(MSG_TYPES)),
    }
    optional = {
        "Content": xml_text, "MsgId": st.one_of(st.integers(-1, 2**70).map(str), xml_text),
        "Event": st.sampled_from(EVENTS), "EventKey": xml_text, "MediaId": xml_text,
        "Recognition": xml_text, "Location_X": xml_text, "Location_Y": xml_text,
        "Scale": xml_text, "Label": xml_text, "PicUrl": xml_text, "Format": xml_text,
    }
    for name in draw(st.lists(st.sampled_from(sorted(optional)), unique=True)):
        fields[name] = draw(optional[name])
    body = "".join(f"<{k}>{_cdata(v)}</{k}>" for k, v in fields.items())
    if draw(st.booleans()):
        body += draw(st.sampled_from(["<a><b><c/></b></a>", "<x>&amp;</x>", "<Content/>",
                                      "<Content>1</Content>"]))
    return f"<xml>{body}</xml>"


raw_bodies = st.one_of(
    st.binary(max_size=400),
    st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from([
        b"", b"<xml>", b"<xml></xml>", b"<!DOCTYPE x [<!ENTITY a 'b'>]><xml>&a;</xml>",
        b'<?xml version="1.0" encoding="gbk"?><xml/>', b"<xml><xml><xml/></xml></xml>",
        b"\xef\xbb\xbf<xml/>", b"<xml>" * 500,
    ]),
)


#: the fuzzed callbacks' timestamp; the verifiers' clock stands there, so every case
#: reaches the parser instead of stopping at the ±5 min window
NOW = 1_700_000_000


@pytest.fixture(scope="module")
def verifier() -> Any:
    """Keyed (compatible and safe mode): only encrypted messages are read."""
    from connectors.wechat.inbound import Verifier

    return Verifier(TOKEN, APPID, AES_KEY, clock=lambda: NOW)


@pytest.fixture(scope="module")
def plain_verifier() -> Any:
    """No key (plaintext mode): the body itself is parsed."""
    from connectors.wechat.inbound import Verifier

    return Verifier(TOKEN, APPID, clock=lambda: NOW)


def _signed_args(**extra: str) -> dict[str, str]:
    from connectors.wechat.inbound import sign

    timestamp, nonce = str(NOW), secrets.token_hex(4)
    return {"timestamp": timestamp, "nonce": nonce,
            "signature": sign(TOKEN, timestamp, nonce), **extra}


def _open(verifier: Any, args: dict[str, str], body: bytes) -> None:
    from connectors.wechat.inbound import Rejected

    try:
        inbound = verifier.open(args, body)
    except Rejected as refused:
        assert 400 <= refused.status < 500
        return
    verifier.reply(inbound, "您好")  # a parsed message can always be answered


@cases(2500)
@given(body=st.one_of(raw_bodies, wechat_xml().map(str.encode)))
def test_wechat_plain(plain_verifier: Any, body: bytes) -> None:
    _open(plain_verifier, _signed_args(), body)


@cases(1500)
@given(inner=st.one_of(wechat_xml(), st.text(max_size=200)), garble=st.booleans(),
       safe=st.booleans())
def test_wechat_encrypted(verifier: Any, inner: str, garble: bool, safe: bool) -> None:
    from wechatpy.crypto import PrpCrypto
    from wechatpy.utils import to_text

    from connectors.wechat.inbound import sign

    encrypt = to_text(PrpCrypto(verifier.crypto.key).encrypt(inner, APPID))
    if garble:
        encrypt = encrypt[: len(encrypt) // 2] + "A" * 7
    args = _signed_args(encrypt_type="aes")
    args["msg_signature"] = sign(TOKEN, args["timestamp"], args["nonce"], encrypt)
    body = f"<xml><ToUserName>{_cdata('gh_x')}</ToUserName><Encrypt>{_cdata(encrypt)}</Encrypt>"
    body += "" if safe else "<MsgType>text</MsgType><Content>x</Content>"
    _open(verifier, args, (body + "</xml>").encode())


@cases(700)
@given(args=st.dictionaries(st.sampled_from(["signature", "timestamp", "nonce", "echostr",
                                             "encrypt_type", "msg_signature", "openid"]),
                            st.text(max_size=40)),
       body=raw_bodies)
def test_wechat_unsigned_is_refused(verifier: Any, args: dict[str, str], body: bytes) -> None:
    _open(verifier, args, body)


# -- Telegram --------------------------------------------------------------------------

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40),
                      st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30))
json_any = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=10)
chat = st.fixed_dictionaries({"id": st.integers(-(2**40), 2**40),
                              "type": st.sampled_from(["private", "group", "channel", "x"])})
user = st.fixed_dictionaries({"id": st.integers(1, 2**40), "is_bot": st.booleans(),
                              "first_name": st.text(max_size=10)})


@st.composite
def telegram_update(draw: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"message_id": draw(st.integers(0, 2**31)),
                               "date": draw(st.integers(0, 2**31)), "chat": draw(chat)}
    if draw(st.booleans()):
        message["from"] = draw(user)
    extras = {
        "text": st.text(max_size=80),
        "caption": st.text(max_size=40),
        "location": st.fixed_dictionaries({"latitude": st.floats(-90, 90),
                                           "longitude": st.floats(-180, 180)}),
        "photo": st.lists(st.fixed_dictionaries({
            "file_id": st.text(max_size=10), "file_unique_id": st.text(max_size=10),
            "width": st.integers(0, 5000), "height": st.integers(0, 5000)}), max_size=3),
        "document": st.fixed_dictionaries({"file_id": st.text(max_size=10),
                                           "file_unique_id": st.text(max_size=10)}),
        "voice": st.fixed_dictionaries({"file_id": st.text(max_size=10),
                                        "file_unique_id": st.text(max_size=10),
                                        "duration": st.integers(0, 600)}),
        "contact": st.fixed_dictionaries({"phone_number": st.text(max_size=15),
                                          "first_name": st.text(max_size=10)}),
        "sticker": json_any,
    }
    for name in draw(st.lists(st.sampled_from(sorted(extras)), unique=True, max_size=3)):
        message[name] = draw(extras[name])
    update: dict[str, Any] = {"update_id": draw(st.integers(0, 2**40))}
    kind = draw(st.sampled_from(["message", "edited_message", "callback_query", "junk"]))
    if kind == "callback_query":
        update["callback_query"] = {"id": draw(st.text(max_size=10)), "from": draw(user),
                                    "chat_instance": "1", "data": draw(st.text(max_size=64)),
                                    "message": message}
    elif kind == "junk":
        update.update(draw(st.dictionaries(st.text(max_size=15), json_any, max_size=3)))
    else:
        update[kind] = message
    return update


@pytest.fixture(scope="module")
def telegram() -> Any:
    pytest.importorskip("connectors.telegram.inbound")
    from telegram import Bot

    from connectors.telegram.texts import load_texts

    return Bot("123456:fuzz-token"), load_texts()


@cases(2000)
@given(data=st.one_of(telegram_update(), json_any))
def test_telegram(telegram: Any, data: Any) -> None:
    from telegram import Update

    from connectors.telegram.inbound import translate

    bot, texts = telegram
    try:
        update = Update.de_json(data, bot)  # the channel answers 400 when this raises
    except Exception:
        return
    if update is not None:
        translate(update, texts)


# -- hotline transcripts ---------------------------------------------------------------

TZ = ZoneInfo("Asia/Shanghai")
jsonl_line = st.one_of(
    st.fixed_dictionaries({}, optional={
        "call_id": st.one_of(st.text(max_size=12), st.integers()),
        "started": st.one_of(st.text(max_size=25), st.integers(), st.floats()),
        "caller": st.text(max_size=15), "phone": st.text(max_size=15),
        "turns": st.one_of(json_any, st.lists(st.fixed_dictionaries({}, optional={
            "speaker": st.sampled_from(["agent", "caller", "x", ""]),
            "text": st.text(max_size=40), "offset": json_leaf}), max_size=4)),
        "text": st.text(max_size=60),
    }).map(lambda d: json.dumps(d, ensure_ascii=False)),
    json_any.map(lambda d: json.dumps(d, ensure_ascii=False)),
    st.text(max_size=80),
)


@cases(2000)
@given(lines=st.lists(jsonl_line, max_size=8), encoding=st.sampled_from(["utf-8", "gb18030"]),
       fmt=st.sampled_from(["auto", "jsonl", "text"]), tail=st.binary(max_size=20))
def test_hotline_transcripts(lines: list[str], encoding: str, fmt: str, tail: bytes) -> None:
    from connectors.hotline.formats import Call, Problem, TranscriptReader

    raw = "\n".join(lines).encode(encoding, "replace") + tail
    reader = TranscriptReader(io.BytesIO(raw), "fuzz.jsonl", format=fmt, tz=TZ)
    for item in reader:
        assert isinstance(item, (Call, Problem))


# -- staff console API and Open311 -----------------------------------------------------


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Any:
    pytest.importorskip("bot.console.app")
    from argon2 import PasswordHasher
    from cryptography.fernet import Fernet

    from bot.console.app import create_app
    from bot.settings import load_settings
    from bot.tickets import NewTicket, TicketStore
    from tests.console.conftest import PASSWORD, login

    var = tmp_path_factory.mktemp("fuzz-console")
    settings_ = load_settings({"VAR_DIR": str(var), "PII_KEY": Fernet.generate_key().decode(),
                               "RASA_TOKEN": "t", "RASA_URL": "http://127.0.0.1:9",
                               "CONSOLE_NOTIFY_TIMEOUT": "0.2"})
    store = TicketStore(settings_.database_url, settings=settings_)
    ticket = store.create(NewTicket(channel="rest", kind="complaint", summary="路灯坏了",
                                    description="人民公园东门路灯坏了一个月"))
    app = create_app(settings_, store)
    accounts = app.state.console.accounts
    accounts.hasher = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    accounts.add("fuzzer", "dispatcher", None, PASSWORD, must_change=False)
    staff = login(app, "fuzzer")
    yield staff, ticket.number
    store.dispose()


ACTIONS = ["dispatch", "start", "reply", "close", "transfer", "return", "merge", "escalate",
           "add_info", "note", "pause", "resume", "rate", "x", "../x", ""]


@cases(800)
@given(action=st.sampled_from(ACTIONS), number=st.one_of(st.just("OWN"), st.text(max_size=20)),
       body=st.one_of(json_any, st.dictionaries(
           st.sampled_from(["department", "text", "reason", "into", "rating", "solved",
                            "comment", "version", "note"]), json_leaf, max_size=4)))
def test_console_api(console: Any, action: str, number: str, body: Any) -> None:
    staff, own = console
    number = own if number == "OWN" else quote(number, safe="")
    path = f"/api/tickets/{number}/actions/{quote(action, safe='')}"
    response = staff.api("POST", path, json=body)
    assert response.status_code < 500, (path, body, response.text[:300])


@cases(600)
@given(params=st.dictionaries(st.sampled_from(["status", "department", "q", "page", "kind",
                                               "channel", "overdue", "sort", "limit"]),
                              st.text(max_size=20), max_size=4),
       open311=st.dictionaries(st.sampled_from(["service_code", "description", "lat", "long",
                                                "address_string", "email", "phone",
                                                "api_key", "jurisdiction_id"]),
                               st.text(max_size=40), max_size=6))
def test_console_queries_and_open311(console: Any, params: dict[str, str],
                                     open311: dict[str, str]) -> None:
    staff, _ = console
    listed = staff.api("GET", "/api/tickets", params=params)
    assert listed.status_code < 500, (params, listed.text[:300])
    posted = staff.client.post("/open311/v2/requests.json", data=open311)
    assert posted.status_code < 500, (open311, posted.text[:300])
    queried = staff.client.get("/open311/v2/requests.json", params=params)
    assert queried.status_code < 500, (params, queried.text[:300])
