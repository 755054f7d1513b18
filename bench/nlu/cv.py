"""Cross-validation of the intent model and the character CRF alone, in seconds.

``citizenbot eval conversations`` measures the whole pipeline with Rasa's
cross-validation (one Rasa training per fold, minutes, new folds each run). This
script trains only :class:`nlu.intents.IntentModel` or :class:`nlu.entities.EntityModel`
on the same examples (``data/nlu`` through the served normaliser and tokenizer), on
several *seeded* 3-fold splits, so two configurations are compared on the same folds
and the spread between seeds shows what is noise. Every choice in docs/nlu.md was
measured with it; the folds are never used to pick examples.

    .venv/bin/python -m bench.nlu.cv intents ['{"joint": false}'] [--seeds 0 1 2]
    .venv/bin/python -m bench.nlu.cv entities ['{"place_suffixes": false}']
    .venv/bin/python -m bench.nlu.cv offdomain ['{"cap": 60}']

The real messages of ``data/nlu/board.yml`` are added to every fold's training data
and never scored (``'{"board": false}'`` leaves them out, to compare).

Intents: macro-F1 of the arg-max intent (Rasa's figure also undoes the fallback).
Entities: exact-span F1 over all entities and per type (stricter than Rasa's
token-level report, so the figures are lower than those of ``eval conversations``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Example:
    text: str
    words: list[str]
    spans: list[tuple[int, int]]
    intent: str | None
    entities: list[tuple[str, int, int]]
    #: a real message kept for its words (``nlu.board``): trained on, never scored
    extra: bool = False


def load_examples(data_dir: Path | None = None) -> tuple[list[Example], dict[str, str]]:
    """data/nlu after the served normaliser and tokenizer, and the intent lexicons."""
    from rasa.engine.graph import ExecutionContext, GraphSchema
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.engine.storage.resource import Resource
    from rasa.nlu.constants import TOKENS_NAMES
    from rasa.shared.nlu.constants import ENTITIES, INTENT, TEXT
    from rasa.shared.nlu.training_data.loading import load_data

    from nlu.components.entity_extractor import is_annotated
    from nlu.components.normalizer import ChineseNormalizer, JiebaDictionaryTokenizer
    from nlu.intents import lexicon_regexes

    storage = LocalModelStorage(Path(tempfile.mkdtemp(prefix="nlu-cv-")))
    context = ExecutionContext(GraphSchema({}), "nlu-cv")
    data = load_data(str(data_dir or ROOT / "data" / "nlu"))
    data = ChineseNormalizer.create({}, storage, Resource("n"), context).process_training_data(
        data
    )
    config = {**JiebaDictionaryTokenizer.get_default_config(),
              "dictionary_path": str(ROOT / "nlu" / "dictionaries")}
    tokenizer = JiebaDictionaryTokenizer.create(config, storage, Resource("t"), context)
    data = tokenizer.process_training_data(data)
    examples = []
    for message in data.training_examples:
        if not message.get(TEXT):
            continue
        tokens = message.get(TOKENS_NAMES[TEXT]) or []
        examples.append(Example(
            text=message.get(TEXT),
            words=[t.text for t in tokens],
            spans=[(t.start, t.end) for t in tokens],
            intent=message.get(INTENT),
            entities=[(e["entity"], e["start"], e["end"]) for e in message.get(ENTITIES) or []],
            extra=not is_annotated(message),
        ))
    lexicons = lexicon_regexes(
        {t["name"]: t["elements"] for t in data.lookup_tables
         if isinstance(t.get("elements"), list)},
        {r["name"]: r["pattern"] for r in data.regex_features},
    )
    return examples, lexicons


def _folds(labels: np.ndarray, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    splitter = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(labels)), labels))


def intents_cv(config: dict[str, Any], seeds: list[int]) -> dict[str, Any]:
    from nlu.intents import IntentModel, IntentModelConfig

    config = dict(config)
    with_board = bool(config.pop("board", True))
    everything, lexicons = load_examples()
    extra = [e for e in everything if e.intent and e.extra] if with_board else []
    examples = [e for e in everything if e.intent and not e.extra]
    y = np.asarray([e.intent for e in examples])
    scores, confusions = [], Counter()
    per_intent: dict[str, list[float]] = {}
    for seed in seeds:
        predicted = np.empty(len(y), dtype=object)
        for train, held in _folds(y, seed):
            model = IntentModel(IntentModelConfig.from_dict(config)).fit(
                [examples[i].text for i in train] + [e.text for e in extra],
                [examples[i].words for i in train] + [e.words for e in extra],
                list(y[train]) + [e.intent or "" for e in extra], lexicons,
            )
            for i in held:
                predicted[i] = model.ranking(examples[i].text, examples[i].words)[0][0]
        scores.append(float(f1_score(y, predicted, average="macro")))
        labels = sorted(set(y))
        for label, f1 in zip(labels, f1_score(y, predicted, average=None, labels=labels),
                             strict=True):
            per_intent.setdefault(label, []).append(float(f1))
        confusions.update((a, b) for a, b in zip(y, predicted, strict=True) if a != b)
    return {
        "macro_f1_mean": round(float(np.mean(scores)), 4),
        "macro_f1_per_seed": [round(s, 4) for s in scores],
        "top_confusions": [f"{a} -> {b}: {n}" for (a, b), n in confusions.most_common(20)],
        "per_intent_f1": {label: round(float(np.mean(f1s)), 3) for label, f1s in
                          sorted(per_intent.items(), key=lambda item: np.mean(item[1]))},
    }


def offdomain_cv(config: dict[str, Any], seeds: list[int]) -> dict[str, Any]:
    """The off-domain figure of ``eval conversations`` for the intent model alone.

    Each fold of the shared off-domain set is held out in turn; the model is trained on
    ``data/nlu`` whose off-domain file holds only the other folds (as served: at most
    ``DEFAULT_CAP`` per domain). The arg-max intent below 0.5 counts as a fallback.
    """
    import shutil

    from nlu import offdomain
    from nlu.intents import IntentModel, IntentModelConfig

    config = dict(config)
    cap = int(config.pop("cap", offdomain.DEFAULT_CAP))
    requests = offdomain.read_requests()
    assignment = offdomain.folds(requests, 3)
    outcomes: Counter[str] = Counter()
    cases: list[str] = []
    for fold in range(3):
        work = Path(tempfile.mkdtemp(prefix="nlu-cv-off-"))
        for path in (ROOT / "data" / "nlu").glob("*.yml"):
            if path.name != offdomain.TRAINING_FILE.name:
                shutil.copy(path, work / path.name)
        others = [r for r, f in zip(requests, assignment, strict=True) if f != fold]
        held = [r.text for r, f in zip(requests, assignment, strict=True) if f == fold]
        (work / offdomain.TRAINING_FILE.name).write_text(
            offdomain.training_yaml(offdomain.select(others, cap), cap), encoding="utf-8")
        (work / "zz_held.yml").write_text(
            'version: "3.1"\nnlu:\n- intent: zz_held\n  examples: |\n'
            + "".join(f"    - {offdomain.quote(t)}\n" for t in held), encoding="utf-8")
        examples, lexicons = load_examples(work)
        train = [e for e in examples if e.intent and e.intent != "zz_held"]
        test = [e for e in examples if e.intent == "zz_held"]
        model = IntentModel(IntentModelConfig.from_dict(config)).fit(
            [e.text for e in train], [e.words for e in train], [e.intent or "" for e in train],
            lexicons)
        for example in test:
            intent, confidence = model.ranking(example.text, example.words)[0]
            if confidence < 0.5:
                outcomes["fallback"] += 1
            elif intent in offdomain.HONEST_INTENTS:
                outcomes["honest"] += 1
            elif intent in offdomain.CASE_INTENTS:
                outcomes["case"] += 1
                cases.append(f"{intent} {confidence:.2f} {example.text}")
            else:
                outcomes["other"] += 1
                outcomes[f"other:{intent}"] += 1
    total = sum(outcomes[k] for k in ("honest", "case", "fallback", "other"))
    return {"total": total,
            "shares": {k: round(v / total, 4) for k, v in sorted(outcomes.items())},
            "case_hits": cases}


def entities_cv(config: dict[str, Any], seeds: list[int]) -> dict[str, Any]:
    from nlu.entities import EntityModel, EntityModelConfig

    examples, _ = load_examples()
    examples = [e for e in examples if not e.extra]  # their places were never annotated
    y = np.asarray([e.intent or "" for e in examples])
    counts: dict[str, list[int]] = {}
    for seed in seeds:
        for train, held in _folds(y, seed):
            model = EntityModel(EntityModelConfig.from_dict(config)).fit(
                [examples[i].text for i in train], [examples[i].spans for i in train],
                [examples[i].entities for i in train], [examples[i].intent for i in train],
            )
            for i in held:
                example = examples[i]
                gold = set(example.entities)
                found = {(e, s, x) for e, s, x, _ in
                         model.predict(example.text, example.spans, example.intent)}
                for kind in {"all"} | {e for e, _, _ in gold | found}:
                    g = {s for s in gold if kind in ("all", s[0])}
                    f = {s for s in found if kind in ("all", s[0])}
                    tally = counts.setdefault(kind, [0, 0, 0])
                    tally[0] += len(g & f)
                    tally[1] += len(f)
                    tally[2] += len(g)
    return {kind: round(2 * hit / max(n_found + n_gold, 1), 4)
            for kind, (hit, n_found, n_gold) in sorted(counts.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", choices=("intents", "entities", "offdomain"))
    parser.add_argument("config", nargs="?", default="{}", help="JSON of config overrides")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    run = {"intents": intents_cv, "entities": entities_cv, "offdomain": offdomain_cv}[args.model]
    print(json.dumps(run(json.loads(args.config), args.seeds), ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
