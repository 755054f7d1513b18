"""``EmergencyDetector``: danger to life overrides whatever intent the model chose.

Placed after the intent classifier and before ``FallbackClassifier`` in
``config.yml``. When the message names a danger (:mod:`nlu.emergency`, the
operator's ``data/emergency.yml``) the intent becomes ``emergency`` with
confidence 1.0, the model's own reading moves down the ranking, and the parse
carries ``emergency``: ``{"response", "keyword", "question", "model_intent"}``
(what the model read before), so the action
knows which number to give and whether the citizen only asked for it. The
hotline reads the same field from its parses.

Not trainable: the rules are read when the model loads, so an added keyword
needs a restart, not a retrain.
"""

from __future__ import annotations

from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from nlu.emergency import DEFAULT_PATH, EmergencyRules, rules

EMERGENCY_INTENT = "emergency"
#: the parse-data key the detector adds
OUTPUT = "emergency"


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False
)
class EmergencyDetector(GraphComponent):
    """Sets intent ``emergency`` when the text names a danger to life."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"rules": str(DEFAULT_PATH)}

    def __init__(self, config: dict[str, Any]) -> None:
        self.rules: EmergencyRules = rules(config.get("rules") or DEFAULT_PATH)

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> EmergencyDetector:
        return cls(config)

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            # ChineseNormalizer already rewrote the text: no second normalization per message
            danger = self.rules.match_normalized(message.get(TEXT) or "")
            if danger is None:
                continue
            read = message.get(INTENT) or {}
            # The emergency takes all the confidence: FallbackClassifier's ambiguity
            # check must not weigh it against the model's reading (1.0 vs thank 0.97).
            ranking = [
                {INTENT_NAME_KEY: entry.get(INTENT_NAME_KEY), "confidence": 0.0}
                for entry in message.get(INTENT_RANKING_KEY) or []
                if entry.get(INTENT_NAME_KEY) != EMERGENCY_INTENT
            ]
            top = {INTENT_NAME_KEY: EMERGENCY_INTENT, "confidence": 1.0}
            message.set(INTENT, top, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [top, *ranking], add_to_output=True)
            found = danger.as_dict()
            found["model_intent"] = {
                INTENT_NAME_KEY: read.get(INTENT_NAME_KEY),
                "confidence": read.get("confidence"),
            }
            message.set(OUTPUT, found, add_to_output=True)
        return messages
