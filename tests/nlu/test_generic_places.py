"""GenericPlaceFilter: a bare 小区 is not a place; a named one is."""

from __future__ import annotations

from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message

from nlu.components.generic_places import GenericPlaceFilter
from tests.nlu.conftest import RasaContext


def _filtered(rasa_context: RasaContext, entities: list[dict]) -> list[dict]:
    storage, resource, context = rasa_context
    component = GenericPlaceFilter.create({}, storage, resource("generic-places"), context)
    message = Message({TEXT: "…", ENTITIES: entities})
    return component.process([message])[0].get(ENTITIES)


def test_bare_generic_words_are_dropped(rasa_context: RasaContext) -> None:
    entities = [
        {"entity": "place", "value": "小区", "start": 4, "end": 6},
        {"entity": "place", "value": "楼下", "start": 0, "end": 2},
        {"entity": "time", "value": "好几天", "start": 12, "end": 15},
    ]
    assert _filtered(rasa_context, entities) == [entities[2]]


def test_named_places_and_other_entities_stay(rasa_context: RasaContext) -> None:
    entities = [
        {"entity": "place", "value": "幸福里小区", "start": 0, "end": 5},
        {"entity": "place", "value": "锦绣家园", "start": 6, "end": 10},
        {"entity": "service", "value": "小区", "start": 11, "end": 13},  # only place is filtered
    ]
    assert _filtered(rasa_context, entities) == entities
