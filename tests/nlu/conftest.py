"""Shared fixtures of the NLU tests: the training data run through our pipeline head."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rasa.shared.nlu.training_data.training_data import TrainingData

ROOT = Path(__file__).resolve().parents[2]
NLU_DATA = ROOT / "data" / "nlu"
DICTIONARIES = ROOT / "nlu" / "dictionaries"

#: (model storage, Resource class, execution context) for building components by hand.
RasaContext = tuple[Any, Any, Any]


@pytest.fixture(scope="session")
def rasa_context(tmp_path_factory: pytest.TempPathFactory) -> RasaContext:
    """A real local model storage, resource factory and execution context."""
    from rasa.engine.graph import ExecutionContext, GraphSchema
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.engine.storage.resource import Resource

    storage = LocalModelStorage(tmp_path_factory.mktemp("model-storage"))
    context = ExecutionContext(GraphSchema({}), "nlu-tests")
    return storage, Resource, context


@pytest.fixture(scope="session")
def tokenized_training_data(rasa_context: RasaContext) -> TrainingData:
    """All of data/nlu after ChineseNormalizer and the jieba tokenizer with our dictionary."""
    from rasa.shared.nlu.training_data.loading import load_data

    from nlu.components.normalizer import ChineseNormalizer
    from nlu.components.normalizer import JiebaDictionaryTokenizer as JiebaTokenizer

    storage, resource, context = rasa_context
    data = load_data(str(NLU_DATA))
    normalizer = ChineseNormalizer.create({}, storage, resource("normalizer"), context)
    data = normalizer.process_training_data(data)
    config = {**JiebaTokenizer.get_default_config(), "dictionary_path": str(DICTIONARIES)}
    tokenizer = JiebaTokenizer.create(config, storage, resource("tokenizer"), context)
    return tokenizer.process_training_data(data)
