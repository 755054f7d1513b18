"""The rule that sends a citizen's messages to staff must name every intent a citizen has:
an intent missing from it would be answered by the bot in the middle of a live chat."""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.settings import ROOT

DOMAIN = ROOT / "bot" / "domain"


def _domain_intents() -> set[str]:
    found: set[str] = set()
    for path in DOMAIN.glob("*.yml"):
        for intent in yaml.safe_load(path.read_text(encoding="utf-8")).get("intents") or []:
            found.add(intent if isinstance(intent, str) else next(iter(intent)))
    return found


def _rule(name: str) -> dict:
    rules = yaml.safe_load((ROOT / "data" / "rules.yml").read_text(encoding="utf-8"))["rules"]
    return next(r for r in rules if r["rule"] == name)


def _intents(rule: dict) -> set[str]:
    return {step["intent"] for step in rule["steps"][0]["or"]}


def test_every_citizen_intent_goes_to_staff_during_a_live_chat() -> None:
    rule = _rule("人工会话中，市民的话转给工作人员")
    citizen = {i for i in _domain_intents() if not i.startswith("EXTERNAL_")}
    assert _intents(rule) == citizen
    assert rule["steps"][-1] == {"action": "action_live_message"}
    assert {"slot_was_set": [{"live_handoff_session": "1"}]} in rule["condition"]


def test_the_console_updates_have_their_rule() -> None:
    rule = _rule("控制台的人工会话消息告诉市民")
    assert _intents(rule) == {i for i in _domain_intents() if i.startswith("EXTERNAL_live_")}
    assert rule["steps"][-1] == {"action": "action_live_update"}


def test_the_promise_names_the_wait_the_queue_enforces() -> None:
    live = yaml.safe_load((DOMAIN / "live.yml").read_text(encoding="utf-8"))["responses"]
    assert "{wait} 分钟内" in live["utter_live_waiting"][0]["text"]
    every = " ".join(Path(p).read_text(encoding="utf-8") for p in DOMAIN.glob("*.yml"))
    assert "30分钟" not in every and "下一个工作日上午" not in every  # promises nothing enforces
