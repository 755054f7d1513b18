"""Words and formats citizens meet are data files: they load, and a broken one says where.

The knowledge-base search's word lists (``data/kb/search/vocabulary.yml``) and the
way a deadline reads (``data/formats.yml``) are edited by operators; a typo must
stop loading with the file and the fault named, not change answers silently.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from actions.common import format_deadline, load_formats
from actions.kb import KnowledgeBaseError, Vocabulary, tokenize


def test_the_shipped_vocabulary_reads_colloquial_questions() -> None:
    vocabulary = Vocabulary.load()
    assert vocabulary.rewrite("驾照找不到了") == "驾驶证丢失了"
    assert "你好" in vocabulary.stopwords
    assert vocabulary.synonyms["娃"] == "孩子"
    # politeness says nothing about the service; the colloquial name finds the formal one
    assert tokenize("你好，请问驾照找不到了咋办") == tokenize("驾驶证丢失")


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ("stopwords: 的\nphrases: {}\n", "exactly phrases, stopwords, synonyms"),
        ("stopwords: [的]\nphrases: {}\nsynonyms: {}\n", "'stopwords' must be text"),
        ("stopwords: 的\nphrases: {丢失: 找不到}\nsynonyms: {}\n", "list of variants"),
        ("stopwords: 的\nphrases: {丢失: [丢]}\nsynonyms: {}\n", "two or more characters"),
        (
            "stopwords: 的\nphrases: {丢失: [找不到], 孩子: [找不到]}\nsynonyms: {}\n",
            "找不到 is listed under both 丢失 and 孩子",
        ),
        ("stopwords: 的\nphrases: {丢失: [找不到\n", "line 3 not valid YAML"),
    ],
)
def test_a_broken_vocabulary_names_the_file_and_the_fault(
    tmp_path: Path, text: str, fault: str
) -> None:
    path = tmp_path / "vocabulary.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(KnowledgeBaseError) as error:
        Vocabulary.load(path)
    assert "vocabulary.yml" in str(error.value)
    assert fault in str(error.value)


def test_a_deadline_reads_as_the_formats_file_says() -> None:
    deadline = datetime(2026, 12, 4, 9, 30, tzinfo=timezone.utc)  # 17:30 in Asia/Shanghai
    assert format_deadline(deadline) == "12月4日"
    assert format_deadline(deadline, with_time=True) == "12月4日17:30"
    assert format_deadline(None) == ""


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ('date: "{month}月{day}日"\n', "'date_time' must be a format"),
        ('date: "{month}月{day}日"\ndate_time: "{year}年{month}月"\n', "may use only"),
        ("- 12月4日\n", "expected a mapping"),
    ],
)
def test_broken_formats_name_the_file_and_the_fault(tmp_path: Path, text: str, fault: str) -> None:
    path = tmp_path / "formats.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError) as error:
        load_formats(path)
    assert "formats.yml" in str(error.value)
    assert fault in str(error.value)
