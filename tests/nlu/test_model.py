"""The real trained model on held-out citizen messages (intents and entities).

Runs only when a model for the current inputs exists (``make run`` or the session
``model`` fixture trained one); training here would make the NLU suite slow.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml

HELD_OUT = Path(__file__).with_name("nlu_heldout.yml")


@pytest.fixture(scope="module")
def agent() -> Any:
    from bot.model import ensure_model

    try:
        path = ensure_model(train=False)
    except FileNotFoundError:
        pytest.skip("no trained model for the current inputs")
    from rasa.core.agent import Agent

    return Agent.load(str(path))


def _parse(agent: Any, text: str) -> dict[str, Any]:
    return asyncio.run(agent.parse_message(text))


def test_intent_accuracy_on_held_out_messages(agent: Any) -> None:
    pairs = yaml.safe_load(HELD_OUT.read_text(encoding="utf-8"))
    wrong = []
    for text, expected in pairs:
        got = _parse(agent, text)["intent"]["name"]
        if got != expected:
            wrong.append((text, expected, got))
    accuracy = 1 - len(wrong) / len(pairs)
    assert accuracy >= 0.85, wrong


@pytest.mark.parametrize(
    ("text", "entity", "value"),
    [
        ("就在阳光花园3栋楼下", "place", "阳光花园3栋"),
        ("昨天晚上十点开始的", "time", "昨天晚上十点"),
        ("我想问问居住证怎么续签", "service", "居住证"),
        ("打3分", "rating", "3"),
        ("2", "rating", "2"),  # a bare digit answering the rating question
        ("电话一三八一二三四五六七八", "phone", "13812345678"),
        ("工单号是GD２０２６１１２７－００４２", "ticket_number", "GD20261127-0042"),
    ],
)
def test_entities_on_real_phrasings(agent: Any, text: str, entity: str, value: str) -> None:
    entities = _parse(agent, text)["entities"]
    assert (entity, value) in {(e["entity"], e["value"]) for e in entities}, entities


@pytest.mark.parametrize("text", ["qwe rty uiop", "woyaotousu", "zxcvb"])
def test_gibberish_falls_back_instead_of_guessing(agent: Any, text: str) -> None:
    assert _parse(agent, text)["intent"]["name"] == "nlu_fallback"
