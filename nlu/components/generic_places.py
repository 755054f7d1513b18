"""``GenericPlaceFilter``: a place entity must name a place.

Our annotation rule (docs/nlu.md) is that a bare 小区, 楼下 or 我们小区 names no
place: the form must still ask where. DIET sees thousands of "X小区" spans and
now and then tags the bare word as well, and one such span is enough to skip or
corrupt the question. The rule is simple and exact, so it is applied here after
the model instead of being left to the model's mood after each retrain.

Pipeline entry (after the entity extractors)::

    - name: nlu.components.generic_places.GenericPlaceFilter
      words: [小区, 我们小区, 楼下, ...]
"""

from __future__ import annotations

from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import ENTITIES, ENTITY_ATTRIBUTE_TYPE, ENTITY_ATTRIBUTE_VALUE
from rasa.shared.nlu.training_data.message import Message

__all__ = ["GenericPlaceFilter"]


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False
)
class GenericPlaceFilter(GraphComponent):
    """Drop ``place`` entities whose whole value is a generic word."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            "entity": "place",
            "words": [
                "小区", "我们小区", "我家小区", "楼下", "楼上", "门口", "这里", "附近",
                "菜市场", "超市", "商场", "路口", "马路", "路边", "这条路", "这条街",
                "垃圾站", "公交站", "地铁站",
            ],
        }

    def __init__(self, config: dict[str, Any]) -> None:
        merged = {**self.get_default_config(), **config}
        self._entity = str(merged["entity"])
        self._words = frozenset(str(word) for word in merged["words"])

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> GenericPlaceFilter:
        return cls(config)

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            entities = message.get(ENTITIES) or []
            kept = [
                entity
                for entity in entities
                if not (
                    entity.get(ENTITY_ATTRIBUTE_TYPE) == self._entity
                    and str(entity.get(ENTITY_ATTRIBUTE_VALUE, "")).strip() in self._words
                )
            ]
            if len(kept) != len(entities):
                message.set(ENTITIES, kept, add_to_output=True)
        return messages
