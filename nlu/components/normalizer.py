"""The head of the NLU pipeline: ``ChineseNormalizer`` and ``JiebaDictionaryTokenizer``.

``ChineseNormalizer`` is the first node of the NLU pipeline.

Rewrites the message text into the canonical spelling of :mod:`nlu.text` before
``JiebaTokenizer`` sees it, in training and at prediction alike, so the model never
learns two spellings of one thing (全角/半角, 繁/简, 一三八… / 138…). On training
examples the entity annotations are moved onto the rewritten text, so annotated
spans stay on the same characters even when whitespace collapses.

Registered as a ``MESSAGE_TOKENIZER``-type node because those are the nodes the
default recipe chains in pipeline order before tokenization; it is not a
``Tokenizer`` subclass, so Rasa's one-tokenizer rule is unaffected.
"""

from __future__ import annotations

import glob
import hashlib
from pathlib import Path
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.tokenizers.jieba_tokenizer import JiebaTokenizer
from rasa.shared.nlu.constants import (
    ENTITIES,
    ENTITY_ATTRIBUTE_END,
    ENTITY_ATTRIBUTE_START,
    ENTITY_ATTRIBUTE_VALUE,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu.text import normalize_with_offsets, remap_span

__all__ = ["ChineseNormalizer", "JiebaDictionaryTokenizer"]


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER], is_trainable=False
)
class ChineseNormalizer(GraphComponent):
    """Normalize full-width, traditional and spoken-digit text in place."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {}

    @staticmethod
    def supported_languages() -> list[str] | None:
        return ["zh"]

    @staticmethod
    def required_packages() -> list[str]:
        return ["opencc"]

    @classmethod
    def fingerprint_addon(cls, config: dict[str, Any]) -> str | None:
        """Key Rasa's training cache on the normalizing code and OpenCC's version.

        Otherwise a changed rule in nlu/text.py would leave cached, stale normalized
        training data in the next model.
        """
        from importlib.metadata import version

        import nlu.text

        source = Path(nlu.text.__file__).read_bytes()
        return hashlib.sha256(source + version("opencc").encode()).hexdigest()

    def __init__(self, config: dict[str, Any]) -> None:
        self._config = config
        # Load OpenCC's dictionaries now, at model load, not on the first citizen message.
        normalize_with_offsets("預熱")

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> ChineseNormalizer:
        return cls(config)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Normalize every training example and move its entity spans along."""
        for message in training_data.training_examples:
            self._normalize_message(message)
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        """Normalize incoming messages (prediction and end-to-end featurization)."""
        for message in messages:
            self._normalize_message(message)
        return messages

    @staticmethod
    def _normalize_message(message: Message) -> None:
        text = message.get(TEXT)
        # "/intent{...}" payloads from buttons are for RegexMessageHandler, not for us.
        if not isinstance(text, str) or not text or text.startswith("/"):
            return
        normalized, origin = normalize_with_offsets(text)
        if normalized == text:
            return
        message.set(TEXT, normalized)
        entities = message.get(ENTITIES)
        if not entities:
            return
        moved = []
        for entity in entities:
            start, end = entity[ENTITY_ATTRIBUTE_START], entity[ENTITY_ATTRIBUTE_END]
            span = remap_span(origin, start, end)
            if span is None:
                continue
            entity = dict(entity)
            value = entity.get(ENTITY_ATTRIBUTE_VALUE)
            entity[ENTITY_ATTRIBUTE_START], entity[ENTITY_ATTRIBUTE_END] = span
            # The value must be normalized too: left as "居住證" while the text now says
            # "居住证", EntitySynonymMapper would learn the synonym 居住证 → 居住證.
            if value == text[start:end]:
                entity[ENTITY_ATTRIBUTE_VALUE] = normalized[span[0] : span[1]]
            elif isinstance(value, str):
                entity[ENTITY_ATTRIBUTE_VALUE] = normalize_with_offsets(value)[0]
            moved.append(entity)
        message.set(ENTITIES, moved)


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER], is_trainable=True
)
class JiebaDictionaryTokenizer(JiebaTokenizer):
    """Rasa's ``JiebaTokenizer``, retrained whenever the user dictionary changes.

    Rasa's training cache keys the stock tokenizer on its config, i.e. on the
    *path* ``dictionary_path``, not on the files in it: after editing
    ``nlu/dictionaries/government.txt``, ``rasa train`` reuses the cached tokenizer
    and ships the old dictionary inside the new model (checked with Rasa 3.6.21).
    Adding a hash of the dictionary files to the fingerprint fixes that; everything
    else is the stock component.
    """

    @classmethod
    def fingerprint_addon(cls, config: dict[str, Any]) -> str | None:
        path = config.get("dictionary_path")
        if not path:
            return None
        digest = hashlib.sha256()
        # The same files JiebaTokenizer loads: everything in the folder.
        for name in sorted(glob.glob(f"{path}/*")):
            file = Path(name)
            if file.is_file():
                digest.update(file.name.encode() + b"\0" + file.read_bytes() + b"\0")
        return digest.hexdigest()
