"""Rasa graph component that labels every message with a department category.

It learns from ``data/routing/`` (real citizen messages with their category),
not from Rasa's NLU examples: intents say what the citizen wants to do, the
category says which department's business it is, and the two are labelled by
different people from different data. The model itself is :class:`nlu.routing.Router`,
so the CLI can use the very same resource without importing Rasa.

Pipeline entry (after DIET)::

    - name: nlu.components.department_router.DepartmentRouter
      training_file: data/routing/messages.jsonl
"""

from __future__ import annotations

import hashlib
import inspect
import logging
from pathlib import Path
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.exceptions import RasaException
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu import routing

logger = logging.getLogger(__name__)

CATEGORY = "category"
CATEGORY_CONFIDENCE = "category_confidence"

#: The project checkout; ``training_file`` is relative to it, not to the cwd of ``rasa``.
PROJECT_ROOT = Path(__file__).resolve().parents[2]

ROUTER_DIR = routing.RESOURCE_DIR


def _training_path(config: dict[str, Any]) -> Path:
    path = Path(config["training_file"])
    return path if path.is_absolute() else PROJECT_ROOT / path


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True
)
class DepartmentRouter(GraphComponent):
    """Adds ``category`` and ``category_confidence`` to each parsed message."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            "training_file": "data/routing/messages.jsonl",
            # Router hyper-parameters (nlu.routing.RouterConfig); defaults are the measured ones.
            "router": {},
        }

    @staticmethod
    def required_packages() -> list[str]:
        return ["sklearn", "rjieba"]

    @classmethod
    def fingerprint_addon(cls, config: dict[str, Any]) -> str | None:
        """Retrain when the messages file or the model code changes.

        Rasa's cache key covers this class's source, its config and its graph
        inputs; the training file and :mod:`nlu.routing` are neither, so without
        this an edited data file would silently reuse the old model.
        """
        merged = {**cls.get_default_config(), **config}
        digest = hashlib.sha256()
        path = _training_path(merged)
        digest.update(path.read_bytes() if path.is_file() else b"<missing>")
        digest.update(inspect.getsource(routing).encode())
        return digest.hexdigest()

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        router: routing.Router | None = None,
    ) -> None:
        self._config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self._router = router

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> DepartmentRouter:
        return cls(config, model_storage, resource)

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> DepartmentRouter:
        try:
            with model_storage.read_from(resource) as directory:
                router = routing.Router.load(directory / ROUTER_DIR)
        except (ValueError, FileNotFoundError, OSError) as exc:
            # A model without this resource (e.g. trained core-only) parses without categories.
            logger.warning("department router not loaded (%s); messages get no category", exc)
            router = None
        return cls(config, model_storage, resource, router)

    def train(self, training_data: TrainingData) -> Resource:
        """Train the router on ``training_file``; ``training_data`` (Rasa's NLU data) is unused."""
        path = _training_path(self._config)
        if not path.is_file():
            raise RasaException(
                f"DepartmentRouter: training file '{path}' not found "
                f"(set 'training_file' relative to {PROJECT_ROOT})"
            )
        try:
            texts, labels = routing.texts_labels(routing.read_jsonl(path))
            config = routing.RouterConfig.from_dict(self._config.get("router") or {})
            self._router = routing.Router(config).fit(texts, labels)
        except ValueError as exc:
            raise RasaException(f"DepartmentRouter: {exc}") from exc
        with self._model_storage.write_to(self._resource) as directory:
            self._router.save(directory / ROUTER_DIR)
        logger.info("department router trained on %d messages from %s", len(texts), path)
        return self._resource

    def process(self, messages: list[Message]) -> list[Message]:
        """Label the messages in one batch (one matrix product for all of them)."""
        if self._router is None:
            return messages
        texts = [message.get(TEXT) or "" for message in messages]
        for message, (label, confidence) in zip(messages, self._router.predict(texts), strict=True):
            message.set(CATEGORY, label, add_to_output=True)
            message.set(CATEGORY_CONFIDENCE, round(confidence, 4), add_to_output=True)
        return messages
