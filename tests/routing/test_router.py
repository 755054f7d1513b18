"""The model module alone: labels, confidences, odd inputs, persistence, determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nlu.routing import Router, RouterConfig, baseline_config

ODD_INPUTS = ["我", "路" * 20_000, "。，！？……", "The street light outside my house is broken", "",
              "\ud800"]


def test_labels_are_training_labels_and_confidence_is_a_probability(
    trained_router: Router, sample_rows: list[dict]
) -> None:
    labels = {r["label"] for r in sample_rows}
    assert set(trained_router.labels) == labels
    texts = [r["text"] for r in sample_rows[:20]]
    for label, confidence in trained_router.predict(texts):
        assert label in labels
        assert 0.0 <= confidence <= 1.0
    rows = trained_router.predict_proba(texts)
    assert rows.shape == (20, len(labels))
    assert rows.sum(axis=1) == pytest.approx(1.0)


def test_clear_complaints_are_routed(trained_router: Router) -> None:
    predictions = trained_router.predict(
        ["A市某公司拖欠农民工工资三个月。我们在工地干了半年，老板一直不发工资，社保也没有交。",
         "A3区某学校乱收补课费。学校要求学生周末补课，每人收费800元，家长意见很大。"]
    )
    assert [label for label, _ in predictions] == ["劳动和社会保障", "教育文体"]


ODD_IDS = ["1char", "20k", "punct", "english", "empty", "lone-surrogate"]


@pytest.mark.parametrize("text", ODD_INPUTS, ids=ODD_IDS)
def test_odd_inputs_get_a_label_with_low_confidence(trained_router: Router, text: str) -> None:
    [(label, confidence)] = trained_router.predict([text])
    assert label in trained_router.labels
    assert 0.0 <= confidence < 0.5


def test_a_20000_character_complaint_is_routed(trained_router: Router) -> None:
    complaint = "A市某公司拖欠农民工工资三个月。老板一直不发工资，社保也没有交。"
    text = (complaint * (20_000 // len(complaint) + 1))[:20_000]
    [(label, confidence)] = trained_router.predict([text])
    assert label == "劳动和社会保障"
    assert 0.0 <= confidence <= 1.0


def test_save_and_load_give_the_same_predictions(
    trained_router: Router, router_dir: Path, sample_rows: list[dict]
) -> None:
    texts = [r["text"] for r in sample_rows[:30]] + ODD_INPUTS
    loaded = Router.load(router_dir)
    assert loaded.labels == trained_router.labels
    assert loaded.config == trained_router.config
    assert loaded.predict(texts) == pytest.approx(trained_router.predict(texts))
    assert not list(router_dir.glob("*.pkl"))


def test_fast_scoring_equals_the_scikit_learn_features(
    trained_router: Router, sample_rows: list[dict]
) -> None:
    texts = [r["text"] for r in sample_rows[:40]] + ODD_INPUTS + ["A市  某路\t\t路灯不亮"]
    x = trained_router._features(texts)
    reference = x @ trained_router._coef.T.astype(np.float64) + trained_router._intercept
    compiled = trained_router._compile()
    inputs = trained_router._inputs(texts)
    fast = np.vstack([compiled.score(inputs, row) for row in range(len(texts))])
    np.testing.assert_allclose(fast, reference, atol=1e-9)


def test_training_is_deterministic(sample_rows: list[dict]) -> None:
    rows = sample_rows[:140]
    texts, labels = [r["text"] for r in rows], [r["label"] for r in rows]
    first = Router(RouterConfig(seed=3)).fit(texts, labels)
    second = Router(RouterConfig(seed=3)).fit(texts, labels)
    assert first.temperature == second.temperature
    assert first.predict(texts[:20]) == second.predict(texts[:20])


def test_baseline_has_no_subject_view_and_still_predicts(sample_rows: list[dict]) -> None:
    rows = sample_rows[:140]
    router = Router(baseline_config()).fit([r["text"] for r in rows], [r["label"] for r in rows])
    assert router.temperature == 1.0
    assert len(router.predict(["小区垃圾没人清理"])) == 1


def test_one_category_is_refused() -> None:
    with pytest.raises(ValueError, match="two categories"):
        Router().fit(["甲", "乙"], ["教育文体", "教育文体"])


def test_search_view_adds_the_sub_words_of_long_words() -> None:
    """物业公司 must also count as 物业: the search view is what makes that so."""
    from nlu import routing

    words = routing._jieba()
    text = "小区的物业公司不作为"
    assert "物业公司" in words(text) and "物业" not in words(text)
    assert {"物业", "公司", "物业公司"} <= set(words.search(text))


@pytest.mark.parametrize("ngrams", [(1, 3), (2, 3), (1, 4)])
def test_char_ngram_lookup_finds_what_scikit_learn_counts(ngrams: tuple[int, int]) -> None:
    """Packed n-gram keys must find exactly the string n-grams, odd characters included."""
    from sklearn.feature_extraction.text import CountVectorizer

    from nlu import routing

    texts = ["小区门口  垃圾\t\t没人清理", "表情😀😀和生僻字𠀀", "a\ud800b", "路", "", "ＡＢ  ab"]
    counter = CountVectorizer(analyzer="char", ngram_range=ngrams, lowercase=False)
    counts = counter.fit_transform(texts[:2] + texts[3:4])
    lookup = routing._CharColumns(counter.vocabulary_, ngrams)
    for text in texts:
        expected = routing._dict_columns(counter.vocabulary_, routing._char_ngrams(text, ngrams))
        assert sorted(lookup(text)) == sorted(expected)
    first = np.bincount(lookup(texts[0]), minlength=counts.shape[1])
    assert first.tolist() == counts[0].toarray()[0].tolist()


def test_router_has_the_search_view_and_nbsvm_baseline_has_neither(
    trained_router: Router, sample_rows: list[dict]
) -> None:
    assert "body_search" in trained_router._vectorizers
    assert trained_router.config.nb_alpha > 0
    rows = sample_rows[:140]
    base = Router(baseline_config()).fit([r["text"] for r in rows], [r["label"] for r in rows])
    assert set(base._vectorizers) == {"body_words", "body_chars"}
    assert base.config.nb_alpha == 0 and not base.config.calibrate


def test_nbsvm_coefficients_are_the_scaled_binary_svm(sample_rows: list[dict]) -> None:
    """Stored weights w_k ⊙ r_k give the decision of the SVM fitted on x ⊙ r_k."""
    from scipy import sparse
    from sklearn.svm import LinearSVC

    rows = sample_rows[:140]
    texts, labels = [r["text"] for r in rows], [r["label"] for r in rows]
    router = Router(RouterConfig(calibrate=False)).fit(texts, labels)
    x = router._features(texts)
    y = np.asarray(labels)
    present = (x > 0).astype(np.float64)
    k = 0
    mine = y == router.labels[k]
    p = 1.0 + np.asarray(present[mine].sum(axis=0)).ravel()
    q = 1.0 + np.asarray(present[~mine].sum(axis=0)).ravel()
    r = np.log((p / p.sum()) / (q / q.sum()))
    svm = LinearSVC(C=0.5, random_state=42).fit(x @ sparse.diags(r), mine)
    expected = svm.decision_function(x @ sparse.diags(r))
    stored = x @ router._coef[k].astype(np.float64) + router._intercept[k]
    np.testing.assert_allclose(stored, expected, atol=1e-5)


def test_a_model_saved_before_the_search_view_still_loads(
    sample_rows: list[dict], tmp_path: Path
) -> None:
    """Format-1 models without ``search_weight``/``nb_alpha`` in their config keep working."""
    import json

    rows = sample_rows[:140]
    old = Router(RouterConfig(search_weight=0.0, nb_alpha=0.0)).fit(
        [r["text"] for r in rows], [r["label"] for r in rows]
    )
    directory = old.save(tmp_path / "old")
    meta = json.loads((directory / "router.json").read_text(encoding="utf-8"))
    del meta["config"]["search_weight"], meta["config"]["nb_alpha"]
    (directory / "router.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    loaded = Router.load(directory)
    texts = [r["text"] for r in rows[:10]] + ODD_INPUTS
    assert loaded.predict(texts) == pytest.approx(old.predict(texts))
