"""actions.kb: loading errors name the culprit; retrieval finds held-out paraphrases."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from actions.kb import Answer, Clarify, KnowledgeBase, KnowledgeBaseError, NotFound

PARAPHRASES = Path(__file__).with_name("kb_paraphrases.yml")

GOOD_ENTRY = """
  - id: sample-entry
    questions: [居住证怎么办理, 办居住证要什么材料, 居住证去哪办]
    answer: 到居住地派出所申请。
    department: 公安机关
    source: 《居住证暂行条例》
"""


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase.load(answer_threshold=0.5, clarify_threshold=0.3)


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# -- the shipped knowledge base -------------------------------------------------


def test_shipped_kb_is_large_and_sourced(kb: KnowledgeBase) -> None:
    assert len(kb.entries) >= 60
    for entry in kb.entries:
        assert 3 <= len(entry.questions) <= 6, entry.id
        assert entry.source and entry.department and entry.answer, entry.id
    topics = {entry.topic for entry in kb.entries}
    for topic in ("户籍", "居住证", "社保", "医保", "公积金", "营业执照", "不动产登记",
                  "出入境", "教育入学", "交通违章", "住房保障", "养老"):
        assert topic in topics


def test_answers_have_no_spaces_between_chinese_characters(kb: KnowledgeBase) -> None:
    import re

    for entry in kb.entries:
        assert not re.search(r"[\u4e00-\u9fff，。] [\u4e00-\u9fff，。]", entry.answer), entry.id


def _accuracy(kb: KnowledgeBase, pairs: list[list[str]]) -> tuple[float, float]:
    top1 = top3 = 0
    for text, expected in pairs:
        ids = [hit.entry.id for hit in kb.search(text, k=3)]
        top1 += bool(ids) and ids[0] == expected
        top3 += expected in ids
    return top1 / len(pairs), top3 / len(pairs)


def test_paraphrases_point_at_existing_entries(kb: KnowledgeBase) -> None:
    data = yaml.safe_load(PARAPHRASES.read_text(encoding="utf-8"))
    ids = {entry.id for entry in kb.entries}
    questions = {q for entry in kb.entries for q in entry.questions}
    for text, expected in data["tuning"] + data["held_out"]:
        assert expected in ids
        assert text not in questions, f"not a paraphrase: {text}"


def test_retrieval_accuracy_on_paraphrases(kb: KnowledgeBase) -> None:
    data = yaml.safe_load(PARAPHRASES.read_text(encoding="utf-8"))
    everything = data["tuning"] + data["held_out"]
    assert len(everything) >= 60
    top1, top3 = _accuracy(kb, everything)
    assert top1 >= 0.85, top1
    assert top3 >= 0.95, top3
    held_top1, held_top3 = _accuracy(kb, data["held_out"])
    assert held_top1 >= 0.8 and held_top3 >= 0.9, (held_top1, held_top3)


def test_decisions(kb: KnowledgeBase) -> None:
    answer = kb.decide("身份證丟了怎麼補辦")  # traditional characters, normalized first
    assert isinstance(answer, Answer) and answer.entry.id == "hukou-id-card-lost"
    assert 0.0 <= answer.hit.confidence <= 1.0
    vague = kb.decide("居住证")
    assert isinstance(vague, Clarify)
    assert 1 <= len(vague.hits) <= 3
    assert all(entry.id.startswith("residence-permit") for entry in vague.entries)
    for unrelated in ("帮我订外卖", "今天天气怎么样", "", "？？？"):
        assert isinstance(kb.decide(unrelated), NotFound), unrelated


def test_confidences_are_bounded_and_sorted(kb: KnowledgeBase) -> None:
    hits = kb.search("公积金怎么取出来", k=5)
    assert len(hits) == 5
    assert all(0.0 <= hit.confidence <= 1.0 for hit in hits)
    assert [h.confidence for h in hits] == sorted((h.confidence for h in hits), reverse=True)


def test_thresholds_come_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot import settings

    kb = KnowledgeBase.load()
    monkeypatch.setattr(
        settings, "get_settings",
        lambda: settings.load_settings({"KB_ANSWER_THRESHOLD": "1.01",
                                        "KB_CLARIFY_THRESHOLD": "1.01"}),
    )
    assert isinstance(kb.decide("身份证丢了怎么补办"), NotFound)


# -- loading errors -------------------------------------------------------------


def test_loads_a_folder(tmp_path: Path) -> None:
    _write(tmp_path, "a.yml", "topic: 测试\nentries:" + GOOD_ENTRY)
    kb = KnowledgeBase.load(tmp_path, answer_threshold=0.5, clarify_threshold=0.3)
    assert [entry.id for entry in kb.entries] == ["sample-entry"]
    assert kb.entries[0].file == "a.yml" and kb.entries[0].topic == "测试"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("entries:\n  - id: x\n    questions: [a\n", "bad.yml: line"),
        ("just text", "bad.yml: expected a mapping with an 'entries' list"),
        ("entries:" + GOOD_ENTRY.replace("    source: 《居住证暂行条例》\n", ""),
         "bad.yml: entry 'sample-entry': missing 'source'"),
        ("entries:" + GOOD_ENTRY.replace("answer: 到居住地派出所申请。", "answer: ''"),
         "bad.yml: entry 'sample-entry': 'answer' must be a non-empty str"),
        ("entries:" + GOOD_ENTRY + "    answr: typo\n",
         "bad.yml: entry 'sample-entry': unknown field(s) answr"),
        ("entries:" + GOOD_ENTRY.replace("id: sample-entry", "id: Sample Entry"),
         "bad.yml: entry 'Sample Entry': id must be"),
        ("entries:" + GOOD_ENTRY.replace("办居住证要什么材料, 居住证去哪办]", "'']"),
         "bad.yml: entry 'sample-entry': 'questions' must be"),
        ("entries:" + GOOD_ENTRY + "    links: [ftp://x]\n",
         "bad.yml: entry 'sample-entry': 'links'"),
        ("entries:\n  - just a string\n", "bad.yml: entry #1: expected a mapping"),
    ],
)
def test_bad_files_name_file_and_entry(tmp_path: Path, text: str, message: str) -> None:
    _write(tmp_path, "bad.yml", text)
    with pytest.raises(KnowledgeBaseError) as error:
        KnowledgeBase.load(tmp_path)
    assert message in str(error.value)


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    _write(tmp_path, "a.yml", "entries:" + GOOD_ENTRY)
    _write(tmp_path, "b.yml", "entries:" + GOOD_ENTRY)
    with pytest.raises(KnowledgeBaseError, match=r"b.yml: entry 'sample-entry': id already used"):
        KnowledgeBase.load(tmp_path)


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeBaseError, match=r"no \*\.yml"):
        KnowledgeBase.load(tmp_path)
