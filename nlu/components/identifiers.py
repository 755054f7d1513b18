"""``IdentifierExtractor``: exact phone, 身份证 and ticket numbers as entities.

Runs after the tokenizer (on the normalized text) and appends ``phone``,
``id_number`` and ``ticket_number`` entities found by :mod:`nlu.identifiers`.
These are never learned: DIET is not trained on them, so nothing here depends on
training data, and a checksum-invalid 身份证 is simply not an entity.
"""

from __future__ import annotations

from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import (
    ENTITIES,
    ENTITY_ATTRIBUTE_CONFIDENCE,
    ENTITY_ATTRIBUTE_END,
    ENTITY_ATTRIBUTE_START,
    ENTITY_ATTRIBUTE_TYPE,
    ENTITY_ATTRIBUTE_VALUE,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message

from nlu.identifiers import find_identifiers

__all__ = ["IdentifierExtractor"]


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False
)
class IdentifierExtractor(GraphComponent, EntityExtractorMixin):
    """Append deterministic identifier entities to each message."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            # Prefix given to ticket numbers typed without one; None: left without (the
            # ticket store reads them with the operator's TICKET_PREFIX).
            "ticket_prefix": None,
            # Which identifier kinds to emit (phone, id_number, ticket_number).
            "entities": ["phone", "id_number", "ticket_number"],
        }

    def __init__(self, config: dict[str, Any]) -> None:
        self._prefix: str | None = config.get("ticket_prefix")
        self._wanted = frozenset(config.get("entities") or ())

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> IdentifierExtractor:
        return cls(config)

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            text = message.get(TEXT)
            if not isinstance(text, str) or not text or text.startswith("/"):
                continue
            found = [
                {
                    ENTITY_ATTRIBUTE_TYPE: item.entity,
                    ENTITY_ATTRIBUTE_VALUE: item.value,
                    ENTITY_ATTRIBUTE_START: item.start,
                    ENTITY_ATTRIBUTE_END: item.end,
                    ENTITY_ATTRIBUTE_CONFIDENCE: 1.0,
                }
                for item in find_identifiers(text, self._prefix)
                if item.entity in self._wanted
            ]
            if not found:
                continue
            entities = [
                entity
                for entity in message.get(ENTITIES, [])
                # A learned entity overlapping an exact one is a mistake of the model.
                if not any(
                    entity[ENTITY_ATTRIBUTE_START] < new[ENTITY_ATTRIBUTE_END]
                    and new[ENTITY_ATTRIBUTE_START] < entity[ENTITY_ATTRIBUTE_END]
                    for new in found
                )
            ]
            entities.extend(self.add_extractor_name(found))
            message.set(ENTITIES, entities, add_to_output=True)
        return messages
