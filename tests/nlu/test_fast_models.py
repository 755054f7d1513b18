"""The fast NLU core: the intent model, the character CRF and the off-domain data.

The models are trained here on all of ``data/nlu`` (seconds) through the real
pipeline head, so these tests check what a citizen would notice: whole places,
calibrated confidences that the fallback can judge, and a saved model that reads
messages exactly as the trained one did.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from rasa.nlu.constants import TOKENS_NAMES
from rasa.shared.nlu.constants import ENTITIES, INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu import offdomain
from nlu.components.normalizer import ChineseNormalizer, JiebaDictionaryTokenizer
from nlu.entities import EntityModel, join_crossings, spans_from_tags
from nlu.intents import IntentModel, lexicon_regexes
from tests.nlu.conftest import DICTIONARIES, RasaContext


def _spans(message: Message) -> list[tuple[int, int]]:
    return [(t.start, t.end) for t in message.get(TOKENS_NAMES[TEXT]) or []]


def _words(message: Message) -> list[str]:
    return [t.text for t in message.get(TOKENS_NAMES[TEXT]) or []]


@pytest.fixture(scope="module")
def head(rasa_context: RasaContext) -> Callable[[str], Message]:
    """Normalise and tokenise a text as the served pipeline does."""
    storage, resource, context = rasa_context
    normalizer = ChineseNormalizer.create({}, storage, resource("n"), context)
    config = {**JiebaDictionaryTokenizer.get_default_config(), "dictionary_path": str(DICTIONARIES)}
    tokenizer = JiebaDictionaryTokenizer.create(config, storage, resource("t"), context)

    def run(text: str) -> Message:
        message = Message({TEXT: text})
        normalizer.process([message])
        tokenizer.process([message])
        return message

    return run


@pytest.fixture(scope="module")
def intent_model(tokenized_training_data: TrainingData) -> IntentModel:
    examples = tokenized_training_data.intent_examples
    lexicons = lexicon_regexes(
        {t["name"]: t["elements"] for t in tokenized_training_data.lookup_tables}
    )
    return IntentModel().fit(
        [m.get(TEXT) for m in examples], [_words(m) for m in examples],
        [m.get(INTENT) for m in examples], lexicons,
    )


@pytest.fixture(scope="module")
def entity_model(tokenized_training_data: TrainingData) -> EntityModel:
    examples = [m for m in tokenized_training_data.training_examples if m.get(TEXT)]
    return EntityModel().fit(
        [m.get(TEXT) for m in examples],
        [_spans(m) for m in examples],
        [[(e["entity"], e["start"], e["end"]) for e in m.get(ENTITIES) or []] for m in examples],
        [m.get(INTENT) for m in examples],
    )


def _entities(model: EntityModel, message: Message, intent: str) -> set[tuple[str, str]]:
    text = message.get(TEXT)
    return {(e, text[s:x]) for e, s, x, _ in model.predict(text, _spans(message), intent)}


@pytest.mark.parametrize(
    ("text", "intent", "expected"),
    [
        ("西城区和平街道3号楼", "inform", ("place", "西城区和平街道3号楼")),
        ("东湖路和解放路交叉口的红绿灯坏了", "complain", ("place", "东湖路和解放路交叉口")),
        ("就在阳光花园3栋楼下", "inform", ("place", "阳光花园3栋")),
        # names made of common words, in no example (issue 21)
        ("幸福小区3号楼楼下天天有人烧烤", "complain", ("place", "幸福小区3号楼")),
        ("红旗新村8栋2单元门口积水好几天了", "complain", ("place", "红旗新村8栋2单元")),
        ("建设路与东湖路交叉口", "inform", ("place", "建设路与东湖路交叉口")),
        ("昨天晚上十点开始的", "inform", ("time", "昨天晚上十点")),
        ("我想问问居住证怎么续签", "inquire", ("service", "居住证")),
    ],
)
def test_entities_keep_their_whole_span(
    entity_model: EntityModel,
    head: Callable[[str], Message],
    text: str,
    intent: str,
    expected: tuple[str, str],
) -> None:
    assert expected in _entities(entity_model, head(text), intent)


def test_two_roads_are_one_place_only_at_their_crossing() -> None:
    text = "建设路和东湖路都堵了"
    found = [("place", 0, 3, 0.9), ("place", 4, 7, 0.8)]
    assert join_crossings(text, found) == found
    crossing = "建设路与东湖路路口堵了"
    assert join_crossings(crossing, [("place", 0, 3, 0.9), ("place", 4, 9, 0.8)]) == [
        ("place", 0, 9, 0.8)
    ]


def test_a_greeting_has_no_time(
    entity_model: EntityModel, head: Callable[[str], Message]
) -> None:
    assert _entities(entity_model, head("晚上好"), "greet") == set()


def test_saved_entity_model_tags_as_trained(
    entity_model: EntityModel, head: Callable[[str], Message], tmp_path: Path
) -> None:
    loaded = EntityModel.load(entity_model.save(tmp_path / "entities"))
    message = head("上周三开始，幸福里小区5栋门口一直有人烧垃圾")
    assert _entities(loaded, message, "complain") == _entities(entity_model, message, "complain")


def test_bio_tags_become_spans() -> None:
    tags = ["O", "B-place", "I-place", "I-time", "O", "I-place"]
    assert spans_from_tags(tags) == [("place", 1, 3), ("time", 3, 4), ("place", 5, 6)]


def test_confidences_are_probabilities_over_every_intent(
    intent_model: IntentModel, head: Callable[[str], Message]
) -> None:
    message = head("楼下烧烤店天天半夜还在营业，油烟太大了")
    ranking = intent_model.ranking(message.get(TEXT), _words(message))
    assert {name for name, _ in ranking} == set(intent_model.labels)
    assert sum(p for _, p in ranking) == pytest.approx(1.0)
    assert ranking[0][0] == "complain" and ranking[0][1] > 0.5


def test_a_lexicon_word_counts_without_an_example(
    intent_model: IntentModel, head: Callable[[str], Message]
) -> None:
    # 有病吧 is in the insult lexicon; the sentence is in no example
    message = head("你们这个机器人有病吧")
    assert intent_model.ranking(message.get(TEXT), _words(message))[0][0] == "insult"


def test_saved_intent_model_ranks_as_trained(
    intent_model: IntentModel, head: Callable[[str], Message], tmp_path: Path
) -> None:
    loaded = IntentModel.load(intent_model.save(tmp_path / "intents"))
    for text in ("我要投诉", "好的", "帮我查下去北京的火车票", "qwe"):
        message = head(text)
        before = intent_model.ranking(message.get(TEXT), _words(message))
        after = loaded.ranking(message.get(TEXT), _words(message))
        assert [n for n, _ in before] == [n for n, _ in after]
        assert [p for _, p in before] == pytest.approx([p for _, p in after])


needs_shared = pytest.mark.skipif(
    not offdomain.SHARED_FILE.exists(), reason="the shared off-domain set is not beside the repo"
)


@needs_shared
def test_off_domain_folds_are_disjoint_and_cover_the_set() -> None:
    requests = offdomain.read_requests()
    folds = offdomain.folds(requests, 3)
    assert set(folds) == {0, 1, 2}
    sizes = [folds.count(f) for f in range(3)]
    assert max(sizes) - min(sizes) <= len({r.domain for r in requests})


@needs_shared
def test_the_training_file_is_what_the_generator_writes() -> None:
    """data/nlu/off_domain.yml is regenerated, never edited by hand."""
    expected = offdomain.training_yaml(offdomain.select(offdomain.read_requests()))
    assert offdomain.TRAINING_FILE.read_text(encoding="utf-8") == expected


def test_off_domain_labels() -> None:
    assert offdomain.Request("讲个笑话吧", "joke").label == "chitchat"
    assert offdomain.Request("红烧肉怎么做", "cookbook").label == "out_of_scope"
    chosen = offdomain.select([offdomain.Request(f"菜{i}", "cookbook") for i in range(50)], cap=5)
    assert len(chosen) == 5
