"""data/nlu: every intent has enough examples and every entity lands on jieba tokens.

jieba can cut a word across an annotated span (Rasa issues #7409, #7550); DIET then
never sees that entity during training. This test runs the real pipeline head
(ChineseNormalizer → JiebaTokenizer with nlu/dictionaries) and fails on any span
that does not start and end on token boundaries.
"""

from __future__ import annotations

from collections import Counter

from rasa.nlu.constants import TOKENS_NAMES
from rasa.shared.nlu.constants import ENTITIES, INTENT, TEXT
from rasa.shared.nlu.training_data.training_data import TrainingData

INTENTS = {
    "greet", "goodbye", "thank", "inquire", "complain", "report", "request_help",
    "suggest", "check_status", "list_my_tickets", "add_info", "inform", "affirm",
    "deny", "cancel", "request_human", "chitchat", "out_of_scope", "insult",
    "emergency", "rate", "solved", "not_solved",
}
#: DIET entities only; phone, id_number and ticket_number come from IdentifierExtractor.
LEARNED_ENTITIES = {"place", "time", "service", "rating"}


def test_every_intent_has_forty_examples(tokenized_training_data: TrainingData) -> None:
    counts = Counter(m.get(INTENT) for m in tokenized_training_data.intent_examples)
    assert set(counts) == INTENTS
    assert {intent: n for intent, n in counts.items() if n < 40} == {}


def test_only_learned_entities_annotated(tokenized_training_data: TrainingData) -> None:
    kinds = {e["entity"] for m in tokenized_training_data.training_examples
             for e in m.get(ENTITIES) or []}
    assert kinds == LEARNED_ENTITIES


def test_entities_align_with_jieba_tokens(tokenized_training_data: TrainingData) -> None:
    misaligned = []
    for message in tokenized_training_data.training_examples:
        tokens = message.get(TOKENS_NAMES[TEXT]) or []
        starts = {token.start for token in tokens}
        ends = {token.end for token in tokens}
        text = message.get(TEXT)
        for entity in message.get(ENTITIES) or []:
            if entity["start"] not in starts or entity["end"] not in ends:
                cut = " / ".join(token.text for token in tokens)
                misaligned.append(f"{entity['entity']}={text[entity['start']:entity['end']]!r}"
                                  f" in {cut}")
    assert misaligned == []


def test_entity_values_match_their_text(tokenized_training_data: TrainingData) -> None:
    """After normalization the span still covers the annotated words."""
    for message in tokenized_training_data.training_examples:
        text = message.get(TEXT)
        for entity in message.get(ENTITIES) or []:
            covered = text[entity["start"]:entity["end"]]
            assert covered.strip() == covered and covered, (text, entity)
