"""UnknownWordsGuard: gibberish falls back instead of getting a confident guess."""

from __future__ import annotations

import pytest
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu.components.normalizer import JiebaDictionaryTokenizer
from nlu.components.unknown_words import UnknownWordsGuard
from tests.nlu.conftest import DICTIONARIES, RasaContext


@pytest.fixture(scope="module")
def guard(rasa_context: RasaContext, tokenized_training_data: TrainingData) -> UnknownWordsGuard:
    """Trained on all of data/nlu, saved, and loaded back as a served model would be."""
    storage, resource, context = rasa_context
    trained = UnknownWordsGuard.create({}, storage, resource("unknown-words"), context)
    saved = trained.train(tokenized_training_data)
    return UnknownWordsGuard.load({}, storage, saved, context)


def _parsed(rasa_context: RasaContext, text: str) -> Message:
    """A message as DIET leaves it: tokenized, with a confident intent."""
    storage, resource, context = rasa_context
    config = {**JiebaDictionaryTokenizer.get_default_config(), "dictionary_path": str(DICTIONARIES)}
    tokenizer = JiebaDictionaryTokenizer.create(config, storage, resource("tok"), context)
    message = Message({TEXT: text})
    tokenizer.process([message])
    message.set(INTENT, {"name": "out_of_scope", "confidence": 0.93})
    message.set(INTENT_RANKING_KEY, [{"name": "out_of_scope", "confidence": 0.93}])
    return message


@pytest.mark.parametrize("text", ["qwe rty uiop", "woyaotousu", "asdfgh jkl", "龘靐齉"])
def test_unseen_words_lose_their_confidence(
    guard: UnknownWordsGuard, rasa_context: RasaContext, text: str
) -> None:
    message = guard.process([_parsed(rasa_context, text)])[0]
    assert message.get(INTENT)["confidence"] == 0.0
    assert all(entry["confidence"] == 0.0 for entry in message.get(INTENT_RANKING_KEY))


@pytest.mark.parametrize(
    "text",
    [
        "我要投诉楼下烧烤店",
        "ok",
        "13812345678",  # numbers are the identifier extractor's, never "unknown"
        "GD20261127-0042",
        "？？？",  # no word at all: left to DIET and the fallback threshold
        "鬯鬯鬯 投诉",  # one known word is enough
        "本周一",  # an unseen word made of known characters
        "幸福里小区",
    ],
)
def test_messages_with_a_known_word_keep_their_intent(
    guard: UnknownWordsGuard, rasa_context: RasaContext, text: str
) -> None:
    message = guard.process([_parsed(rasa_context, text)])[0]
    assert message.get(INTENT) == {"name": "out_of_scope", "confidence": 0.93}


def test_gibberish_loses_learned_entities_but_keeps_exact_ones(
    guard: UnknownWordsGuard, rasa_context: RasaContext
) -> None:
    message = _parsed(rasa_context, "zxcv bnm lkj")
    guessed = {"entity": "place", "value": "zxcv bnm lkj", "start": 0, "end": 12,
               "extractor": "ChineseEntityExtractor"}
    exact = {"entity": "phone", "value": "13812345678", "start": 0, "end": 11,
             "extractor": "IdentifierExtractor"}
    message.set(ENTITIES, [guessed, exact])
    message = guard.process([message])[0]
    assert message.get(ENTITIES) == [exact]
