"""ChineseNormalizer and IdentifierExtractor as Rasa graph components.

First on rasa ``Message`` objects with a real local ModelStorage, then inside a
tiny NLU model trained and loaded with Rasa's own API (a few examples, a
scikit-learn classifier: seconds, no TensorFlow training).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.tokenizers.jieba_tokenizer import JiebaTokenizer
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu.components.identifiers import IdentifierExtractor
from nlu.components.normalizer import ChineseNormalizer
from tests.nlu.conftest import DICTIONARIES, RasaContext


def _normalizer(ctx: RasaContext) -> ChineseNormalizer:
    storage, resource, context = ctx
    return ChineseNormalizer.create(
        ChineseNormalizer.get_default_config(), storage, resource("norm"), context
    )


def _extractor(ctx: RasaContext) -> IdentifierExtractor:
    storage, resource, context = ctx
    config = {**IdentifierExtractor.get_default_config(), "ticket_prefix": "GD"}
    return IdentifierExtractor.create(config, storage, resource("ids"), context)


def test_normalizer_rewrites_prediction_messages(rasa_context: RasaContext) -> None:
    message = Message({TEXT: "工單號是ＧＤ２０２６１１２７－００４２，電話一三八一二三四五六七八"})
    _normalizer(rasa_context).process([message])
    assert message.get(TEXT) == "工单号是GD20261127-0042,电话13812345678"


def test_normalizer_leaves_intent_payloads(rasa_context: RasaContext) -> None:
    message = Message({TEXT: '/rate{"rating": "5"}'})
    _normalizer(rasa_context).process([message])
    assert message.get(TEXT) == '/rate{"rating": "5"}'


def test_normalizer_moves_training_entities(rasa_context: RasaContext) -> None:
    raw = "就在  幸福里小區３棟  樓下，從昨天晚上開始"
    place = raw.index("幸福里"), raw.index("棟") + 1
    time = raw.index("昨天"), raw.index("上") + 1
    message = Message(
        {
            TEXT: raw,
            "intent": "inform",
            ENTITIES: [
                {"entity": "place", "start": place[0], "end": place[1], "value": "幸福里小區３棟"},
                {"entity": "time", "start": time[0], "end": time[1], "value": "昨天晚上"},
            ],
        }
    )
    _normalizer(rasa_context).process_training_data(TrainingData([message]))
    text = message.get(TEXT)
    assert text == "就在 幸福里小区3栋 楼下,从昨天晚上开始"
    spans = {e["entity"]: text[e["start"] : e["end"]] for e in message.get(ENTITIES)}
    assert spans == {"place": "幸福里小区3栋", "time": "昨天晚上"}
    # values follow the text, or EntitySynonymMapper would learn 幸福里小区3栋 → 幸福里小區３棟
    values = {e["entity"]: e["value"] for e in message.get(ENTITIES)}
    assert values == {"place": "幸福里小区3栋", "time": "昨天晚上"}


def test_training_values_leave_no_spurious_synonyms(
    tokenized_training_data: TrainingData,
) -> None:
    """After normalization, every annotated value equals its text unless it is a synonym."""
    explicit = {"一", "二", "两", "三", "四", "五"}  # data/nlu/synonyms.yml
    for message in tokenized_training_data.training_examples:
        text = message.get(TEXT)
        for entity in message.get(ENTITIES) or []:
            covered = text[entity["start"] : entity["end"]]
            assert entity["value"] == covered or covered in explicit, (text, entity)


def test_extractor_after_tokenizer(rasa_context: RasaContext) -> None:
    storage, resource, context = rasa_context
    tokenizer = JiebaTokenizer.create(
        {**JiebaTokenizer.get_default_config(), "dictionary_path": str(DICTIONARIES)},
        storage, resource("jieba"), context,
    )
    message = Message({TEXT: "工单号gd20261127-42查一下，我电话是幺三八一二三四五六七八"})
    _normalizer(rasa_context).process([message])
    tokenizer.process([message])
    assert message.get(TOKENS_NAMES[TEXT])
    # a DIET guess overlapping the exact number must give way to it
    message.set(ENTITIES, [{"entity": "time", "start": 3, "end": 11, "value": "x",
                            "extractor": "DIETClassifier"}])
    _extractor(rasa_context).process([message])
    entities = message.get(ENTITIES)
    found = {(e["entity"], e["value"], e["extractor"]) for e in entities}
    assert found == {
        ("ticket_number", "GD20261127-0042", "IdentifierExtractor"),
        ("phone", "13812345678", "IdentifierExtractor"),
    }
    text = message.get(TEXT)
    phone = next(e for e in entities if e["entity"] == "phone")
    assert text[phone["start"] : phone["end"]] == "13812345678"


def test_extractor_ignores_invalid_id_number(rasa_context: RasaContext) -> None:
    message = Message({TEXT: "身份证110101199003074515"})
    _extractor(rasa_context).process([message])
    assert not message.get(ENTITIES)


TINY_NLU = """version: "3.1"
nlu:
- intent: check_status
  examples: |
    - 查一下工单GD20261127-0042
    - 我的工单办到哪了
    - 查询工单进度
    - 工单号GD20261101-0001有结果吗
- intent: inform
  examples: |
    - 电话13812345678
    - 就在幸福里小区门口
    - 昨天晚上开始的
    - 我的手机号是13912345678
"""

TINY_CONFIG = f"""recipe: default.v1
language: zh
assistant_id: nlu-test
pipeline:
  - name: nlu.components.normalizer.ChineseNormalizer
  - name: nlu.components.normalizer.JiebaDictionaryTokenizer
    dictionary_path: {DICTIONARIES}
  - name: CountVectorsFeaturizer
  - name: CountVectorsFeaturizer
    analyzer: char_wb
    min_ngram: 1
    max_ngram: 2
  - name: LogisticRegressionClassifier
  - name: nlu.components.identifiers.IdentifierExtractor
    ticket_prefix: GD
  - name: EntitySynonymMapper
policies: []
"""


def test_components_in_a_trained_rasa_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rasa.core.agent import Agent
    from rasa.model_training import train_nlu

    monkeypatch.setenv("RASA_CACHE_DIRECTORY", str(tmp_path / "cache"))
    (tmp_path / "nlu.yml").write_text(TINY_NLU, encoding="utf-8")
    (tmp_path / "config.yml").write_text(TINY_CONFIG, encoding="utf-8")
    model = train_nlu(
        str(tmp_path / "config.yml"), str(tmp_path / "nlu.yml"), str(tmp_path / "models")
    )
    assert model, "training produced no model"
    agent = Agent.load(model)
    typed = "查下工單ＧＤ２０２６１１２７－００４２"
    parsed = asyncio.run(agent.parse_message(typed))
    # the model reads the normalized copy; the Rasa server's parse (connectors.rasa_hooks, once
    # loaded in this process) hands back the text as typed, a bare agent the copy
    assert parsed["text"] in (typed, "查下工单GD20261127-0042")
    assert parsed["intent"]["name"] == "check_status"
    tickets = [e for e in parsed["entities"] if e["entity"] == "ticket_number"]
    assert [e["value"] for e in tickets] == ["GD20261127-0042"]
    assert tickets[0]["extractor"] == "IdentifierExtractor"


@pytest.fixture(autouse=True)
def _quiet_tf(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")


def test_tokenizer_fingerprint_follows_dictionary_files(tmp_path: Path) -> None:
    """Rasa's cache must retrain the tokenizer when a dictionary file changes."""
    from nlu.components.normalizer import JiebaDictionaryTokenizer

    (tmp_path / "a.txt").write_text("芙蓉 10 ns\n", encoding="utf-8")
    config = {"dictionary_path": str(tmp_path)}
    before = JiebaDictionaryTokenizer.fingerprint_addon(config)
    assert before == JiebaDictionaryTokenizer.fingerprint_addon(config)
    (tmp_path / "a.txt").write_text("芙蓉小镇 1000 ns\n", encoding="utf-8")
    assert JiebaDictionaryTokenizer.fingerprint_addon(config) != before
    assert JiebaDictionaryTokenizer.fingerprint_addon({"dictionary_path": None}) is None


def test_normalizer_fingerprint_is_stable() -> None:
    first = ChineseNormalizer.fingerprint_addon({})
    assert first and first == ChineseNormalizer.fingerprint_addon({})


def test_case_kinds_are_one_decision_for_the_fallback(rasa_context: RasaContext) -> None:
    """Complaint or report? Either opens the form: their split is no "没听懂"."""
    from nlu.components.intent_classifier import IntentClassifier

    storage, resource, context = rasa_context
    config = {**IntentClassifier.get_default_config(),
              "one_decision": ["complain", "report", "suggest", "request_help"]}
    classifier = IntentClassifier.create(config, storage, resource("intents"), context)
    split = [("complain", 0.52), ("report", 0.40), ("out_of_scope", 0.08)]
    assert classifier._confidence(split) == pytest.approx(0.92)
    unsure = [("inquire", 0.49), ("complain", 0.28), ("check_status", 0.23)]
    assert classifier._confidence(unsure) == 0.49  # not in the group: its own probability
    alone = IntentClassifier.create(IntentClassifier.get_default_config(), storage,
                                    resource("intents-alone"), context)
    assert alone._confidence(split) == 0.52  # no group configured: nothing added
