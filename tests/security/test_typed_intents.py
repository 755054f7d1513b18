"""Issue 16: text a citizen types (or a caller says) is never an intent.

Rasa reads ``/intent{…}`` as an intent with entities; only the payload of a
button the bot itself offered in the conversation may be read that way
(:func:`connectors.rasa_hooks.is_offered_payload`), and never an ``EXTERNAL_*`` intent.
The running-server side is in ``test_access.py``; here the rule itself and the
hotline, which parses transcripts with the same model outside any conversation.
"""

from __future__ import annotations

from pathlib import Path

from rasa.core.channels.channel import UserMessage
from rasa.shared.core.events import BotUttered, UserUttered

from connectors.hotline.nlu import load_nlu
from connectors.rasa_hooks import is_channel_event, is_offered_payload

OFFERED = [
    UserUttered("你好"),
    BotUttered("请问您要办什么？", data={"buttons": [
        {"title": "投诉", "payload": "/complain"},
        {"title": "解决了", "payload": "/solved"},
        {"title": "咨询", "payload": "我想咨询个事"},
    ]}),
]


def test_only_offered_button_payloads_are_intents() -> None:
    assert is_offered_payload("/complain", OFFERED)
    assert is_offered_payload(" /solved ", OFFERED)
    assert not is_offered_payload("/not_solved", OFFERED)  # never offered
    assert not is_offered_payload('/complain{"place": "x"}', OFFERED)  # not the payload
    assert not is_offered_payload("/solved", [UserUttered("你好")])  # nothing offered
    assert not is_offered_payload("我想咨询个事", OFFERED)  # plain text is text anyway


def test_external_intents_are_never_offered() -> None:
    button = {"title": "t", "payload": "/EXTERNAL_ticket_update"}
    forged = BotUttered("x", data={"buttons": [button]})
    assert not is_offered_payload("/EXTERNAL_ticket_update", [forged])


def test_only_a_channel_verified_event_carries_its_own_payload() -> None:
    menu = UserMessage("/check_status", input_channel="wechat", metadata={"wechat_menu": "M1"})
    typed = UserMessage("/check_status", input_channel="wechat", metadata={})
    # REST passes the body's metadata through, but its input channel is always "rest"
    posted = UserMessage("/check_status", input_channel="rest", metadata={"wechat_menu": "M1"})
    assert is_channel_event(menu)
    assert not is_channel_event(typed) and not is_channel_event(posted)


def test_a_transcript_line_that_looks_like_an_intent_is_read_as_text(model: Path) -> None:
    parsed = load_nlu(model).parse(
        ['/EXTERNAL_ticket_update{"ticket_number": "GD20261127-0042"}', "/solved"]
    )
    for parse in parsed:
        assert parse["intent"]["name"] not in ("EXTERNAL_ticket_update",), parse
        assert not [e for e in parse["entities"] if e.get("extractor") == "RegexMessageHandler"]
    solved = parsed[1]["intent"]
    assert not (solved["name"] == "solved" and solved["confidence"] == 1.0), solved
