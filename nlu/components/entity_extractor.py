"""``ChineseEntityExtractor``: place, time, service and rating by a character CRF.

The model is :class:`nlu.entities.EntityModel` (why characters and not words:
see that module). It learns from the entity annotations in ``data/nlu`` and reads
the normalised text and the jieba tokens of ``JiebaDictionaryTokenizer``; it
needs no featurizer. Trains in seconds, tags a message in well under a millisecond.

It uses the message's intent as a feature (the gold one in training, the one
``IntentClassifier`` predicted in use), so it must come after the intent classifier.

Pipeline entry (after the tokenizer and the intent classifier, before
``IdentifierExtractor``, which drops learned entities overlapping an exact
phone/身份证/ticket number)::

    - name: nlu.components.entity_extractor.ChineseEntityExtractor
"""

from __future__ import annotations

import hashlib
import inspect
import logging
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import (
    ENTITIES,
    ENTITY_ATTRIBUTE_CONFIDENCE,
    ENTITY_ATTRIBUTE_END,
    ENTITY_ATTRIBUTE_START,
    ENTITY_ATTRIBUTE_TYPE,
    ENTITY_ATTRIBUTE_VALUE,
    INTENT,
    INTENT_NAME_KEY,
    METADATA,
    METADATA_INTENT,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu import entities
from nlu.board import UNANNOTATED

__all__ = ["ChineseEntityExtractor", "is_annotated"]

logger = logging.getLogger(__name__)

MODEL_DIR = "entities"


def _token_spans(message: Message) -> list[tuple[int, int]]:
    return [(token.start, token.end) for token in message.get(TOKENS_NAMES[TEXT]) or []]


def is_annotated(message: Message) -> bool:
    """Whether the example's entities were annotated: a block marked
    :data:`nlu.board.UNANNOTATED` (real messages kept for their words) names places
    nobody tagged, and would teach that they are none."""
    metadata = message.get(METADATA) or {}
    block = metadata.get(METADATA_INTENT) if isinstance(metadata, dict) else None
    return not (isinstance(block, dict) and block.items() >= UNANNOTATED.items())


def _intent(message: Message) -> str | None:
    """The gold intent of a training example, or the one predicted for a message."""
    intent = message.get(INTENT)
    if isinstance(intent, dict):
        intent = intent.get(INTENT_NAME_KEY)
    return intent if isinstance(intent, str) and intent else None


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=True
)
class ChineseEntityExtractor(GraphComponent, EntityExtractorMixin):
    """Character-level CRF entity extractor."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        # any nlu.entities.EntityModelConfig field (c1, c2, max_iterations, window)
        return {}

    @staticmethod
    def required_packages() -> list[str]:
        # Rasa fingerprints these by distribution name through a fixed map, which knows
        # sklearn_crfsuite (it installs python-crfsuite, the library we use) but not
        # pycrfsuite itself
        return ["sklearn_crfsuite"]

    @classmethod
    def fingerprint_addon(cls, config: dict[str, Any]) -> str | None:
        """Retrain when the model code changes (Rasa's cache sees only this file)."""
        return hashlib.sha256(inspect.getsource(entities).encode()).hexdigest()

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        model: entities.EntityModel | None = None,
    ) -> None:
        self._config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self._model = model

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> ChineseEntityExtractor:
        return cls(config, model_storage, resource)

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> ChineseEntityExtractor:
        try:
            with model_storage.read_from(resource) as directory:
                model = entities.EntityModel.load(directory / MODEL_DIR)
        except (ValueError, FileNotFoundError, OSError) as exc:
            logger.warning("entity extractor not loaded (%s); no learned entities", exc)
            model = None
        return cls(config, model_storage, resource, model)

    def train(self, training_data: TrainingData) -> Resource:
        examples = [
            m for m in training_data.training_examples if m.get(TEXT) and is_annotated(m)
        ]
        spans = [
            [
                (str(e[ENTITY_ATTRIBUTE_TYPE]), int(e[ENTITY_ATTRIBUTE_START]),
                 int(e[ENTITY_ATTRIBUTE_END]))
                for e in m.get(ENTITIES) or []
            ]
            for m in examples
        ]
        if not any(spans):
            logger.warning("ChineseEntityExtractor: no annotated entities, nothing to train")
            return self._resource
        config = entities.EntityModelConfig.from_dict(self._config)
        self._model = entities.EntityModel(config).fit(
            [m.get(TEXT) for m in examples], [_token_spans(m) for m in examples], spans,
            [_intent(m) for m in examples],
        )
        with self._model_storage.write_to(self._resource) as directory:
            self._model.save(directory / MODEL_DIR)
        return self._resource

    def process(self, messages: list[Message]) -> list[Message]:
        if self._model is None:
            return messages
        for message in messages:
            text = message.get(TEXT)
            if not isinstance(text, str) or not text or text.startswith("/"):
                continue
            found = [
                {
                    ENTITY_ATTRIBUTE_TYPE: entity,
                    ENTITY_ATTRIBUTE_VALUE: text[start:end],
                    ENTITY_ATTRIBUTE_START: start,
                    ENTITY_ATTRIBUTE_END: end,
                    ENTITY_ATTRIBUTE_CONFIDENCE: round(confidence, 4),
                }
                for entity, start, end, confidence in self._model.predict(
                    text, _token_spans(message), _intent(message)
                )
            ]
            if found:
                message.set(
                    ENTITIES,
                    message.get(ENTITIES, []) + self.add_extractor_name(found),
                    add_to_output=True,
                )
        return messages
