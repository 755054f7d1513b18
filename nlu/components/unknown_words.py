"""``UnknownWordsGuard``: a message made only of words the model never saw is a guess.

DIET always names an intent, and for text with no known feature at all (keyboard
mashing such as "qwe rty uiop", pinyin typed without picking characters,
"woyaotousu") that intent is whichever class the bias happens to favour, often
with a confidence above the fallback threshold. The citizen should instead hear
"I did not understand" and be offered a person, so this node sets the intent
confidence to zero when none of the message's words occurs in the training
examples, and ``FallbackClassifier`` (next in the pipeline) turns it into
``nlu_fallback``. Learned entities of such a message are guesses too and are
dropped; exact identifiers (``IdentifierExtractor``) stay.

Numbers are left out of the check: phone, 身份证 and ticket numbers are new on
every message and are read by ``IdentifierExtractor``, not by DIET. A Chinese word
is known when every one of its characters occurs in training: each character is a
morpheme DIET has features for, and jieba glues unseen combinations into one word
("本周一", "幸福里小区") that must not count as gibberish. Latin letters carry no such
meaning one by one, so a Latin word must itself have been seen.

Pipeline entry (after DIET, before ``FallbackClassifier``)::

    - name: nlu.components.unknown_words.UnknownWordsGuard
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import TOKENS_NAMES
from rasa.shared.nlu.constants import (
    ENTITIES,
    EXTRACTOR,
    INTENT,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

__all__ = ["UnknownWordsGuard", "content_words"]

logger = logging.getLogger(__name__)

VOCABULARY_FILE = "vocabulary.json"

#: a word counts when it has a letter (Latin or CJK) and no digit
_LETTER = re.compile(r"[^\W\d_]")
_DIGIT = re.compile(r"\d")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def content_words(message: Message) -> list[str]:
    """The message's tokens that carry meaning for DIET: lower-cased, no numbers or punctuation."""
    tokens = message.get(TOKENS_NAMES[TEXT]) or []
    words = (token.text.lower() for token in tokens)
    return [word for word in words if _LETTER.search(word) and not _DIGIT.search(word)]


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class UnknownWordsGuard(GraphComponent):
    """Zero the intent confidence of messages whose words were never seen in training."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            # entities of these extractors are exact rules and stay; learned ones go
            "keep_extractors": ["IdentifierExtractor"],
        }

    def __init__(
        self,
        model_storage: ModelStorage,
        resource: Resource,
        vocabulary: frozenset[str] = frozenset(),
        config: dict[str, Any] | None = None,
    ) -> None:
        self._model_storage = model_storage
        self._resource = resource
        self._vocabulary = vocabulary
        merged = {**self.get_default_config(), **(config or {})}
        self._keep = frozenset(merged["keep_extractors"] or ())

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> UnknownWordsGuard:
        return cls(model_storage, resource, config=config)

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> UnknownWordsGuard:
        try:
            with model_storage.read_from(resource) as directory:
                words = json.loads((directory / VOCABULARY_FILE).read_text(encoding="utf-8"))
        except (ValueError, FileNotFoundError, OSError) as exc:
            # without a vocabulary the guard does nothing rather than refuse every message
            logger.warning("unknown-words guard not loaded (%s); it lets all through", exc)
            words = []
        return cls(model_storage, resource, frozenset(words), config)

    def train(self, training_data: TrainingData) -> Resource:
        vocabulary: set[str] = set()
        for example in training_data.intent_examples:
            words = content_words(example)
            vocabulary.update(words)
            vocabulary.update(char for word in words for char in _CJK.findall(word))
        self._vocabulary = frozenset(vocabulary)
        with self._model_storage.write_to(self._resource) as directory:
            (directory / VOCABULARY_FILE).write_text(
                json.dumps(sorted(vocabulary), ensure_ascii=False), encoding="utf-8"
            )
        return self._resource

    def _knows(self, word: str) -> bool:
        if word in self._vocabulary:
            return True
        chars = _CJK.findall(word)
        return len(chars) == len(word) and all(char in self._vocabulary for char in chars)

    def process(self, messages: list[Message]) -> list[Message]:
        if not self._vocabulary:
            return messages
        for message in messages:
            intent = message.get(INTENT)
            words = content_words(message)
            if not intent or not words or any(map(self._knows, words)):
                continue
            message.set(INTENT, {**intent, PREDICTED_CONFIDENCE_KEY: 0.0}, add_to_output=True)
            ranking = message.get(INTENT_RANKING_KEY) or []
            message.set(
                INTENT_RANKING_KEY,
                [{**entry, PREDICTED_CONFIDENCE_KEY: 0.0} for entry in ranking],
                add_to_output=True,
            )
            # a learned entity of such text is as much a guess as its intent
            # ("zxcv bnm lkj" tagged as a place); exact identifiers stay
            entities = message.get(ENTITIES) or []
            kept = [e for e in entities if e.get(EXTRACTOR) in self._keep]
            if len(kept) != len(entities):
                message.set(ENTITIES, kept, add_to_output=True)
        return messages
