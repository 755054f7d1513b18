"""DepartmentRouter as Rasa runs it: real ModelStorage, real Messages, a real Rasa model."""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu.components.department_router import (
    CATEGORY,
    CATEGORY_CONFIDENCE,
    DepartmentRouter,
)

COMPLAINT = "A市某公司拖欠农民工工资三个月。老板一直不发工资，社保也没有交，劳动监察不管。"


def _context() -> ExecutionContext:
    return ExecutionContext(GraphSchema({}), "test-model")


def test_trains_persists_loads_and_labels_messages(tmp_path: Path, sample_file: Path) -> None:
    (tmp_path / "storage").mkdir()
    storage = LocalModelStorage(tmp_path / "storage")
    resource = Resource("train_DepartmentRouter5")
    config = {**DepartmentRouter.get_default_config(), "training_file": str(sample_file)}

    trained = DepartmentRouter.create(config, storage, resource, _context())
    assert trained.train(TrainingData()) == resource

    loaded = DepartmentRouter.load(config, storage, resource, _context())
    labels = {json.loads(line)["label"] for line in sample_file.read_text().splitlines()}
    messages = [Message(data={"text": COMPLAINT}), Message(data={"text": "x"})]
    loaded.process(messages)
    for message in messages:
        output = message.as_dict(only_output_properties=True)
        assert output[CATEGORY] in labels
        assert 0.0 <= output[CATEGORY_CONFIDENCE] <= 1.0
    assert messages[0].get(CATEGORY) == "劳动和社会保障"
    assert messages[1].get(CATEGORY_CONFIDENCE) < 0.5


def test_fingerprint_follows_the_training_file(tmp_path: Path, sample_file: Path) -> None:
    copy = tmp_path / "messages.jsonl"
    copy.write_bytes(sample_file.read_bytes())
    config = {"training_file": str(copy)}
    before = DepartmentRouter.fingerprint_addon(config)
    assert DepartmentRouter.fingerprint_addon(config) == before
    with copy.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"id": "x", "text": "新的留言", "label": "教育文体"}) + "\n")
    assert DepartmentRouter.fingerprint_addon(config) != before


def test_missing_training_file_is_a_clear_error(tmp_path: Path) -> None:
    from rasa.shared.exceptions import RasaException

    (tmp_path / "storage").mkdir()
    storage = LocalModelStorage(tmp_path / "storage")
    config = {"training_file": str(tmp_path / "nope.jsonl")}
    router = DepartmentRouter.create(config, storage, Resource("r"), _context())
    with pytest.raises(RasaException, match=r"nope\.jsonl"):
        router.train(TrainingData())


def test_category_reaches_parse_output_and_tracker(tmp_path: Path, sample_file: Path) -> None:
    """Train a tiny real Rasa model; check /model/parse and the tracker's latest_message."""
    from rasa.api import train
    from rasa.core.agent import Agent
    from rasa.server import create_app

    (tmp_path / "data").mkdir()
    (tmp_path / "config.yml").write_text(textwrap.dedent(f"""\
        recipe: default.v1
        language: zh
        assistant_id: routing-test
        pipeline:
          - name: JiebaTokenizer
          - name: CountVectorsFeaturizer
            analyzer: char
            min_ngram: 1
            max_ngram: 2
          - name: LogisticRegressionClassifier
          - name: nlu.components.department_router.DepartmentRouter
            training_file: {sample_file}
        policies:
          - name: RulePolicy
        """), encoding="utf-8")
    (tmp_path / "domain.yml").write_text(textwrap.dedent("""\
        version: "3.1"
        intents: [greet, complain]
        responses:
          utter_greet: [{text: 你好}]
          utter_ack: [{text: 收到}]
        """), encoding="utf-8")
    (tmp_path / "data" / "nlu.yml").write_text(textwrap.dedent("""\
        version: "3.1"
        nlu:
          - intent: greet
            examples: |
              - 你好
              - 您好
              - 早上好
          - intent: complain
            examples: |
              - 我要投诉
              - 我要举报
              - 投诉拖欠工资
        """), encoding="utf-8")
    (tmp_path / "data" / "rules.yml").write_text(textwrap.dedent("""\
        version: "3.1"
        rules:
          - rule: ack
            steps: [{intent: complain}, {action: utter_ack}]
          - rule: greet
            steps: [{intent: greet}, {action: utter_greet}]
        """), encoding="utf-8")
    result = train(
        domain=str(tmp_path / "domain.yml"),
        config=str(tmp_path / "config.yml"),
        training_files=[str(tmp_path / "data")],
        output=str(tmp_path / "models"),
    )
    assert result.code == 0, result

    agent = Agent.load(result.model)

    async def exercise() -> tuple[dict, dict, dict]:
        import httpx

        # Rasa's real HTTP app on a real socket (sanic-testing is not installed).
        app = create_app(agent=agent)
        server = await app.create_server(
            host="127.0.0.1", port=0, return_asyncio_server=True, access_log=False
        )
        await server.startup()
        port = server.server.sockets[0].getsockname()[1]
        try:
            async with httpx.AsyncClient() as client:
                response = await client.post(
                    f"http://127.0.0.1:{port}/model/parse", json={"text": COMPLAINT}, timeout=60
                )
                response.raise_for_status()
        finally:
            server.close()
            await server.wait_closed()
        await agent.handle_text(COMPLAINT, sender_id="citizen-1")
        tracker = await agent.tracker_store.retrieve("citizen-1")
        assert tracker is not None
        user_event = next(e for e in reversed(tracker.events) if e.type_name == "user")
        return response.json(), tracker.latest_message.parse_data, user_event.as_dict()

    parsed, latest, event = asyncio.run(exercise())
    for data in (parsed, latest, event["parse_data"]):
        assert data[CATEGORY] == "劳动和社会保障"
        assert 0.0 < data[CATEGORY_CONFIDENCE] <= 1.0

    # The CLI finds the same resource inside the real archive, without loading Rasa's graph.
    from bot.model.router import load_router

    [(label, _)] = load_router(Path(result.model), None).predict([COMPLAINT])
    assert label == "劳动和社会保障"
