"""The hot-path hooks of connectors.rasa_hooks change cost, not behaviour.

* the quick acceptance of action responses accepts only what Rasa's full schema accepts;
* the graph runner without dask gives the same parses and predictions as dask;
* action calls reuse one kept-alive connection, and a server that went away is
  reconnected to.
"""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from jsonschema import Draft202012Validator
from jsonschema.validators import validator_for

from connectors import rasa_hooks as ops

ops.install_hooks()

GOOD_EVENTS: list[dict[str, Any]] = [
    {"event": "slot", "name": "case_place", "value": "人民路"},
    {"event": "slot", "name": "case_place", "value": None, "timestamp": None},
    {"event": "bot", "text": "好的", "data": {"buttons": []}},
    {"event": "action", "name": "utter_greet", "policy": None, "confidence": 1.0},
    {"event": "active_loop", "name": None},
    {"event": "followup", "name": "action_listen"},
    {"event": "reset_slots"},
    {"event": "restart"},
    {"event": "user", "text": "你好", "parse_data": {"intent": {"name": "greet",
                                                               "confidence": 0.9},
                                                    "entities": []}},
    {"event": "reminder", "intent": "EXTERNAL_x", "date_time": "2026-12-03T10:00:00"},
]
BAD_EVENTS: list[Any] = [
    {"event": "no_such_event"},
    {"event": "slot", "name": "case_place"},  # value missing
    {"name": "case_place", "value": "x"},  # no event
    {"event": 7},
    {"event": ["slot"]},
    {"event": "slot", "name": "x", "value": 1, "timestamp": "yesterday"},
    {"event": "bot", "metadata": "not an object"},
    {"event": "user", "parse_data": {"intent": {"name": 5}}},
    "slot",
    None,
]


def _full(result: Any) -> bool:
    from rasa.core.actions.action import RemoteAction

    schema = RemoteAction.action_response_format_spec()
    return bool(validator_for(schema, default=Draft202012Validator)(schema).is_valid(result))


def _responses() -> list[Any]:
    cases: list[Any] = [{}, {"events": []}, {"responses": [{"text": "好"}]}, [], "x",
                        {"events": None}, {"responses": "好"}, {"responses": ["好"]}]
    for event in GOOD_EVENTS + BAD_EVENTS:
        cases.append({"events": [event], "responses": []})
        cases.append({"events": [GOOD_EVENTS[0], event]})
    return cases


@pytest.mark.parametrize("result", _responses())
def test_quick_acceptance_never_accepts_what_the_schema_refuses(result: Any) -> None:
    if ops._quickly_valid(result):
        assert _full(result)
    if _full(result) and isinstance(result, dict):
        # the usual responses take the quick path
        assert ops._quickly_valid(result) or any(
            isinstance(e, dict) and e.get("event") == "user" for e in result.get("events", [])
        )


def test_refused_responses_raise_rasas_error() -> None:
    from jsonschema import ValidationError
    from rasa.core.actions.action import RemoteAction

    action = RemoteAction("action_x", None)
    for bad in BAD_EVENTS:
        with pytest.raises(ValidationError, match="Failed to validate Action server response"):
            action._validate_action_result({"events": [bad]})
    assert action._validate_action_result({"events": GOOD_EVENTS[:8]})


# -- graph runner ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def agent(model: Path) -> Any:
    from rasa.core.agent import Agent

    return Agent.load(str(model))


MESSAGES = ["你好", "社保卡丢了怎么补办", "我要投诉小区楼下烧烤店半夜还在营业", "/greet",
            "我的工单处理得怎么样了", "谢谢", "asdkjh qwe"]


def _with_dask(fn: Any) -> Any:
    from rasa.engine.runner.dask import DaskGraphRunner

    direct = DaskGraphRunner.run
    DaskGraphRunner.run = ops._ORIGINAL_GRAPH_RUN  # type: ignore[method-assign]
    try:
        return fn()
    finally:
        DaskGraphRunner.run = direct  # type: ignore[method-assign]


def test_direct_runner_parses_and_predicts_as_dask(agent: Any) -> None:
    from rasa.core.channels.channel import UserMessage
    from rasa.shared.core.events import ActionExecuted
    from rasa.shared.core.trackers import DialogueStateTracker

    processor = agent.processor

    async def conversation() -> list[Any]:
        seen = []
        tracker = DialogueStateTracker("rest:graph", agent.domain.slots)
        tracker.update(ActionExecuted("action_listen"))
        for text in MESSAGES:
            parsed = await processor.parse_message(UserMessage(text, sender_id="rest:graph"),
                                                   tracker)
            parsed.pop("metadata", None)
            seen.append(parsed)
            from rasa.shared.core.events import UserUttered

            tracker.update(UserUttered(text, parsed["intent"], parsed["entities"], parsed))
            prediction = processor._predict_next_with_tracker(copy.deepcopy(tracker))
            seen.append((prediction.max_confidence_index, prediction.policy_name,
                         prediction.probabilities))
            tracker.update(ActionExecuted("action_listen"))
        return seen

    direct = asyncio.run(conversation())
    dask = _with_dask(lambda: asyncio.run(conversation()))
    assert direct == dask


# -- kept-alive action calls -------------------------------------------------------------


def test_action_calls_reuse_one_connection_and_survive_a_restart() -> None:
    from rasa.utils.endpoints import EndpointConfig

    async def run() -> tuple[int, int, Any]:
        peers: set[Any] = set()

        async def webhook(request: web.Request) -> web.Response:
            peers.add(request.transport.get_extra_info("peername"))
            return web.json_response({"events": [], "responses": [], "got": await
                                      request.json()})

        async def serve(port: int = 0) -> tuple[web.AppRunner, int]:
            app = web.Application()
            app.router.add_post("/webhook", webhook)
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", port)
            await site.start()
            return runner, site._server.sockets[0].getsockname()[1]

        runner, port = await serve()
        endpoint = EndpointConfig(f"http://127.0.0.1:{port}/webhook")
        for index in range(5):
            reply = await endpoint.request(json={"n": index, "text": "你好"}, method="post")
        first = len(peers)
        await runner.cleanup()  # the action server restarts
        runner, _ = await serve(port)
        again = await endpoint.request(json={"n": 9}, method="post")
        await runner.cleanup()
        await ops.close_kept_sessions()
        return first, len(peers), (reply, again)

    first, total, (reply, again) = asyncio.run(run())
    assert first == 1  # five calls, one connection
    assert total == 2
    assert reply["got"] == {"n": 4, "text": "你好"} and again["got"] == {"n": 9}


def test_response_variants_are_still_drawn_per_channel() -> None:
    from rasa.core.nlg.response import TemplatedNaturalLanguageGenerator

    nlg = TemplatedNaturalLanguageGenerator({"utter_x": [
        {"text": "甲"}, {"text": "乙"}, {"text": "微信", "channel": "wechat"}]})
    assert {nlg._random_response_for("utter_x", "wechat", {})["text"]
            for _ in range(20)} == {"微信"}
    assert {nlg._random_response_for("utter_x", "rest", {})["text"]
            for _ in range(60)} == {"甲", "乙"}
    assert nlg._random_response_for("utter_missing", "rest", {}) is None


def test_domain_emptiness_is_still_told() -> None:
    from rasa.shared.core.domain import Domain

    assert Domain.empty().is_empty()
    assert not Domain.from_yaml('version: "3.1"\nintents: [greet]').is_empty()


def test_start_up_objects_leave_garbage_collection() -> None:
    import gc

    asyncio.run(ops.freeze_loaded_objects())
    try:
        assert gc.get_freeze_count() > 0
        garbage: list[Any] = []
        garbage.append(garbage)  # a new cycle is still collected
        del garbage
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()


# -- the domain only where it is read ------------------------------------------------------

ACTIONS_DIR = Path(__file__).resolve().parents[2] / "actions"


@pytest.fixture(scope="module")
def domain() -> Any:
    from rasa.shared.core.domain import Domain

    return Domain.load(str(ACTIONS_DIR.parent / "bot" / "domain"))


def _request(domain: Any, name: str, selective: bool = True) -> dict[str, Any]:
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.utils.endpoints import EndpointConfig

    endpoint = EndpointConfig("http://127.0.0.1:1/webhook", enable_selective_domain=selective)
    tracker = DialogueStateTracker("rest:domain", domain.slots)
    return RemoteAction(name, endpoint)._action_call_format(tracker, domain)


def test_actions_get_the_domain_only_when_they_read_it(domain: Any) -> None:
    whole = domain.as_dict()
    assert "domain" not in _request(domain, "action_answer_inquiry")
    assert "domain" not in _request(domain, "action_start_case")
    assert _request(domain, "action_ticket_status")["domain"] == whole
    form = _request(domain, "validate_case_form")["domain"]
    assert "responses" not in form
    assert form["slots"] == whole["slots"] and form["forms"] == whole["forms"]
    assert _request(domain, "action_answer_inquiry", selective=False)["domain"] == whole
    assert _request(domain, "validate_case_form", selective=False)["domain"] == whole
    assert whole["responses"]  # the domain itself is untouched


def test_an_action_call_with_a_form_running_is_rasas_request(domain: Any) -> None:
    """The active loop goes in without ``asdict``'s deep copy: the same request as
    Rasa's for every kind of action, and the tracker keeps its loop."""
    import json

    from rasa.core.actions.action import RemoteAction
    from rasa.shared.core.events import ActionExecuted, ActiveLoop, SlotSet, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.utils.endpoints import EndpointConfig

    parse = {"intent": {"name": "complain", "confidence": 0.97},
             "entities": [{"entity": "time", "value": "半夜", "start": 9, "end": 11}],
             "intent_ranking": [{"name": "complain", "confidence": 0.97},
                                {"name": "inquire", "confidence": 0.02}],
             "text": "我要投诉小区楼下烧烤店半夜还在营业"}
    tracker = DialogueStateTracker("rest:loop", domain.slots)
    for event in (ActionExecuted("action_listen"),
                  UserUttered(parse["text"], parse["intent"], parse["entities"], parse),
                  ActionExecuted("case_form"), ActiveLoop("case_form"),
                  SlotSet("requested_slot", "case_place")):
        tracker.update(event)
    loop = tracker.active_loop
    assert loop is not None and loop.trigger_message  # the form's first message is in it
    endpoint = EndpointConfig("http://127.0.0.1:1/webhook", enable_selective_domain=True)
    rasas = RemoteAction._action_call_format.__wrapped__
    for name in ("validate_case_form", "action_ticket_status", "action_answer_inquiry"):
        action = RemoteAction(name, endpoint)
        ours, theirs = action._action_call_format(tracker, domain), rasas(action, tracker, domain)
        assert tracker.active_loop is loop
        assert ours["tracker"] == theirs["tracker"]
        assert ours["tracker"]["active_loop"]["trigger_message"]["intent"]["name"] == "complain"
        assert json.dumps(ours["tracker"], sort_keys=True) == json.dumps(theirs["tracker"],
                                                                         sort_keys=True)
        assert {k: v for k, v in ours.items() if k != "domain"} == {
            k: v for k, v in theirs.items() if k != "domain"}


def test_endpoints_turn_the_selective_domain_on(monkeypatch: pytest.MonkeyPatch) -> None:
    from rasa.core.utils import read_endpoints_from_path

    for name in ("ACTION_ENDPOINT_URL", "TRACKER_STORE_URL", "LOCK_STORE_TYPE",
                 "LOCK_STORE_HOST", "LOCK_STORE_PORT", "LOCK_STORE_DB"):
        monkeypatch.setenv(name, "1")
    endpoints = read_endpoints_from_path(str(ACTIONS_DIR.parent / "endpoints.yml"))
    assert endpoints.action.kwargs.get("enable_selective_domain") is True


def _domain_reads(functions: dict[str, Any]) -> dict[str, str | None]:
    """Per function: "full" when it reads its ``domain`` (or passes it to something
    that may), "form" when only rasa_sdk's form validation (``super().run``) gets it."""
    import ast

    memo: dict[str, str | None] = {}

    def reads(name: str, stack: tuple[str, ...] = ()) -> str | None:
        if name in memo:
            return memo[name]
        if name in stack:
            return None
        found: str | None = None
        for node in ast.walk(functions[name]):
            if isinstance(node, (ast.Attribute, ast.Subscript)) and isinstance(
                    node.value, ast.Name) and node.value.id == "domain":
                found = "full"
            elif isinstance(node, ast.Call) and any(
                    isinstance(arg, ast.Name) and arg.id == "domain"
                    for arg in [*node.args, *(k.value for k in node.keywords)]):
                callee = node.func
                if (isinstance(callee, ast.Attribute) and callee.attr == "run"
                        and isinstance(callee.value, ast.Call)
                        and getattr(callee.value.func, "id", "") == "super"):
                    found = found or "form"
                elif isinstance(callee, ast.Name) and callee.id in functions:
                    found = reads(callee.id, (*stack, name)) or found
                else:
                    found = "full"  # handed to something we cannot see into
            if found == "full":
                break
        memo[name] = found
        return found

    return {name: reads(name) for name in functions}


def test_every_action_that_reads_the_domain_is_sent_it(domain: Any) -> None:
    import ast

    functions: dict[str, Any] = {}
    actions: dict[str, Any] = {}
    for path in sorted(ACTIONS_DIR.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                functions[node.name] = node
            elif isinstance(node, ast.ClassDef):
                methods = {m.name: m for m in node.body
                           if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))}
                named = methods.get("name")
                returned = [n.value.value for n in ast.walk(named) if isinstance(n, ast.Return)
                            and isinstance(n.value, ast.Constant)] if named else []
                if returned and "run" in methods:
                    for method in methods.values():
                        functions[f"{node.name}.{method.name}"] = method
                    actions[str(returned[0])] = node.name
    reads = _domain_reads(functions)
    marked = ops._marked_send_domain(domain)
    assert set(actions) <= set(domain.user_actions)
    checked = 0
    for action, cls in actions.items():
        read = {reads[name] for name in functions if name.startswith(f"{cls}.")}
        if "full" in read:
            assert action in marked, f"{action} reads the domain: mark it send_domain: true"
            checked += 1
        elif "form" in read:
            assert action.startswith("validate_") or action in marked, action
            checked += 1
    assert checked >= 5  # the status and case actions read response texts


# -- no tracker copy where it protects nothing -----------------------------------------------


def test_actions_share_the_tracker_only_where_a_copy_protects_nothing(
    agent: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import random

    from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
    from rasa.shared.core.trackers import DialogueStateTracker

    replays: list[int] = []
    replay = DialogueStateTracker.travel_back_in_time

    def counted(self: Any, target_time: float) -> Any:
        replays.append(len(self.events))
        return replay(self, target_time)

    monkeypatch.setattr(DialogueStateTracker, "travel_back_in_time", counted)

    async def conversation(sender: str) -> tuple[list[Any], list[Any]]:
        random.seed(7)
        answers = []
        for text in ["你好", "谢谢", "再见", "你好"]:
            output = CollectingOutputChannel()
            await agent.handle_message(UserMessage(text, output, sender))
            answers.append([m.get("text") for m in output.messages])
        tracker = await agent.tracker_store.retrieve(sender)
        events = [(type(e).__name__, getattr(e, "action_name", None), getattr(e, "text", None))
                  for e in tracker.events]
        return answers, events

    shared = asyncio.run(conversation("rest:shared"))
    replays_shared = len(replays)
    replays.clear()
    monkeypatch.setattr(ops, "_tracker_may_be_shared", lambda *_: False)
    copied = asyncio.run(conversation("rest:copied"))
    assert shared == copied  # same answers, same conversation
    assert any(answers for answers in shared[0])
    assert replays_shared < len(replays)  # and fewer replays of the session


def test_a_loop_action_still_gets_its_own_copy() -> None:
    from rasa.core.actions.action import ActionBotResponse, RemoteAction
    from rasa.core.actions.forms import FormAction
    from rasa.core.policies.policy import PolicyPrediction
    from rasa.shared.core.events import SlotSet

    quiet = PolicyPrediction([1.0], "RulePolicy")
    assert ops._tracker_may_be_shared(RemoteAction("action_x", None), quiet)
    assert ops._tracker_may_be_shared(ActionBotResponse("utter_greet"), quiet)
    assert not ops._tracker_may_be_shared(FormAction("case_form", None), quiet)
    with_events = PolicyPrediction([1.0], "RulePolicy", events=[SlotSet("x", 1)])
    assert not ops._tracker_may_be_shared(RemoteAction("action_x", None), with_events)


# -- no deep copies for debug lines nobody writes --------------------------------------------


@pytest.mark.parametrize("module_name", ops.LOG_ONLY_COPY_MODULES)
def test_every_deepcopy_there_only_feeds_a_structlog_debug_line(module_name: str) -> None:
    import ast
    import importlib
    import inspect

    tree = ast.parse(inspect.getsource(importlib.import_module(module_name)))
    in_debug: set[int] = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "debug"
                and getattr(node.func.value, "id", "") == "structlogger"):
            in_debug.update(id(inner) for inner in ast.walk(node))
    copies = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
              and isinstance(node.func, ast.Attribute) and node.func.attr == "deepcopy"]
    assert copies  # what the hook is for
    assert all(id(node) in in_debug for node in copies)
    assert isinstance(importlib.import_module(module_name).copy, ops._LogOnlyCopy)


def test_debug_lines_still_get_a_snapshot_when_they_are_written() -> None:
    import structlog
    from rasa.core import processor

    value = {"events": [{"name": "x"}]}
    saved = structlog.get_config()["wrapper_class"]
    try:
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(20))
        assert processor.copy.deepcopy(value) is value  # INFO: nobody reads it
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(10))
        copied = processor.copy.deepcopy(value)
        assert copied == value and copied is not value
        assert copied["events"] is not value["events"]
    finally:
        structlog.configure(wrapper_class=saved)
    assert processor.copy.copy([1]) == [1]  # the rest of the module as it was


# -- the featurised session once per tracker state ------------------------------------------


def _conversation_predictions(agent: Any) -> tuple[list[Any], Any]:
    from rasa.core.channels.channel import UserMessage
    from rasa.shared.core.events import ActionExecuted, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    processor = agent.processor

    async def conversation() -> tuple[list[Any], Any]:
        seen = []
        tracker = DialogueStateTracker("rest:states", agent.domain.slots)
        tracker.update(ActionExecuted("action_listen"))
        for text in MESSAGES:
            parsed = await processor.parse_message(UserMessage(text, sender_id="rest:states"),
                                                   tracker)
            tracker.update(UserUttered(text, parsed["intent"], parsed["entities"], parsed))
            for _ in range(3):  # a few predictions per message, as a turn makes them
                prediction = processor._predict_next_with_tracker(tracker)
                seen.append((prediction.max_confidence_index, prediction.policy_name,
                             prediction.probabilities))
                name = agent.domain.action_names_or_texts[prediction.max_confidence_index]
                tracker.update(ActionExecuted(name))
                if name == "action_listen":
                    break
        return seen, tracker

    return asyncio.run(conversation())


def test_predictions_are_the_same_with_the_featurised_session_reused(
    agent: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rasa.shared.core.trackers import DialogueStateTracker

    reused, _ = _conversation_predictions(agent)
    monkeypatch.setattr(DialogueStateTracker, "past_states",
                        DialogueStateTracker.past_states.__wrapped__)
    computed, _ = _conversation_predictions(agent)
    assert reused == computed and len(reused) > len(MESSAGES)


def test_reused_states_are_copies_and_follow_the_tracker(agent: Any) -> None:
    from rasa.shared.core.events import ActionExecuted
    from rasa.shared.core.trackers import DialogueStateTracker

    _, tracker = _conversation_predictions(agent)
    domain = agent.domain
    compute = DialogueStateTracker.past_states.__wrapped__
    rule_only = {"slots": ["requested_slot"], "loops": []}
    for args in [(False, False, None), (False, True, rule_only), (True, False, None)]:
        expected = compute(tracker, domain, *args)
        first = tracker.past_states(domain, *args)
        assert first == expected
        for state in first:  # what the featurizer does to the states it gets
            state.get("user", {}).pop("intent", None)
        assert tracker.past_states(domain, *args) == expected
    tracker.update(ActionExecuted("action_listen"))
    grown = tracker.past_states(domain)
    assert grown == compute(tracker, domain) and len(grown) == len(expected) + 1


# -- rules narrowed by the action that just ran ----------------------------------------------


def _rule_policy(agent: Any) -> Any:
    from rasa.core.policies.rule_policy import RulePolicy

    nodes = agent.processor.graph_runner._instantiated_nodes.values()
    return next(node._component for node in nodes if isinstance(node._component, RulePolicy))


def test_indexed_rule_lookup_finds_exactly_the_rules_rasa_finds(agent: Any) -> None:
    """Every lookup table of the trained RulePolicy, against the states of a real
    conversation and the states of every learned rule (each a conversation the rule
    was made from), at every length: the same keys as Rasa's walk over all of them."""
    import json

    from rasa.core.policies.rule_policy import RulePolicy

    policy = _rule_policy(agent)
    rasas = RulePolicy._get_possible_keys.__wrapped__
    _, tracker = _conversation_predictions(agent)
    conversation = [tracker.past_states(agent.domain, ignore_rule_only_turns=flag,
                                        rule_only_data=policy._get_rule_only_data())
                    for flag in (False, True)]
    checked = found = 0
    for lookup in policy.lookup.values():
        if not isinstance(lookup, dict) or not lookup:
            continue
        runs = conversation + [json.loads(key) for key in lookup]
        for states in runs:
            for end in range(len(states) + 1):
                prefix = states[:end]
                expected = rasas(policy, lookup, prefix)
                assert policy._get_possible_keys(lookup, prefix) == expected, prefix
                checked += 1
                found += bool(expected)
    # the comparison covered real work: many prefixes, most of which some rule fits
    assert checked > 200 and found > checked // 2


# -- the featurised session continued from the last replay -----------------------------------


def test_continued_replay_gives_rasas_states_at_every_step(agent: Any) -> None:
    """A conversation grown one event at a time — predicted actions, a form with its
    loop and slots, bot messages, and every kind of event that undoes or edits earlier
    ones — featurised after each event as RulePolicy asks (twice), against Rasa's replay
    from scratch of the same tracker."""
    import asyncio

    from rasa.core.channels.channel import UserMessage
    from rasa.graph_components.providers.domain_provider import DomainProvider
    from rasa.shared.core.events import (
        ActionExecuted,
        ActionExecutionRejected,
        ActionReverted,
        ActiveLoop,
        BotUttered,
        DefinePrevUserUtteredFeaturization,
        EntitiesAdded,
        FollowupAction,
        LoopInterrupted,
        Restarted,
        SessionStarted,
        SlotSet,
        UserUtteranceReverted,
        UserUttered,
    )
    from rasa.shared.core.trackers import DialogueStateTracker

    processor = agent.processor
    # the domain object the policies get (the graph's own, not agent.domain)
    domain = next(node._component._domain
                  for node in processor.graph_runner._instantiated_nodes.values()
                  if isinstance(node._component, DomainProvider))
    compute = DialogueStateTracker.past_states.__wrapped__
    tracker = DialogueStateTracker("rest:replay", domain.slots)
    continued = steps = 0
    #: steps with the ensemble's DefinePrevUserUtteredFeaturization, and those continued
    defined = defined_continued = 0

    def add(*events: Any) -> None:
        """Events added together, as an action's events are, then featurised."""
        nonlocal continued, steps, defined, defined_continued
        steps += 1
        kept = tracker.__dict__.get("_citizenbot_replay")
        for event in events:
            tracker.update(event)
        expected = compute(tracker, domain)
        assert tracker.past_states(domain) == expected, events
        assert tracker.past_states(domain) == expected, events  # the kept copy, again
        now = tracker.__dict__.get("_citizenbot_replay")
        continued += kept is not None and now.tracker is kept.tracker
        if len(events) > 1 and isinstance(events[0], DefinePrevUserUtteredFeaturization):
            defined += 1
            defined_continued += kept is not None and now.tracker is kept.tracker

    async def say(text: str) -> None:
        parsed = await processor.parse_message(UserMessage(text, sender_id="rest:replay"),
                                               tracker)
        add(UserUttered(text, parsed["intent"], parsed["entities"], parsed))
        for _ in range(4):
            prediction = processor._predict_next_with_tracker(tracker)
            name = domain.action_names_or_texts[prediction.max_confidence_index]
            # as the processor does: the prediction's events (the ensemble's
            # DefinePrevUserUtteredFeaturization after a user message), then the action
            add(*prediction.events,
                ActionExecuted(name, prediction.policy_name, prediction.max_confidence,
                               hide_rule_turn=prediction.hide_rule_turn))
            if name in domain.form_names and tracker.active_loop_name != name:
                add(ActiveLoop(name))
                add(SlotSet("requested_slot", "place"))
            if name == "action_listen":
                return
            add(BotUttered("好的"))

    async def conversation() -> None:
        add(ActionExecuted("action_session_start"))
        add(SessionStarted())
        add(ActionExecuted("action_listen"))
        await say(MESSAGES[0])
        # edits the last user message (before a form: a replay of a form's unhappy
        # path applies it to another message, and Rasa's own replays then disagree)
        add(EntitiesAdded([{"entity": "place", "value": "幸福里"}]))
        for text in MESSAGES[1:3]:
            await say(text)
        add(DefinePrevUserUtteredFeaturization(True))  # edits the last user message
        await say("幸福里小区3栋楼下")
        add(LoopInterrupted(True))
        add(ActionExecutionRejected("case_form"))
        add(FollowupAction("action_listen"))
        await say("最近一个月每天晚上")
        add(UserUtteranceReverted())
        add(ActionExecuted("action_listen"))
        await say("我的工单处理得怎么样了")
        # an undo with more events after it than it removed: the list grew but changed
        add(ActionReverted(), ActionExecuted("utter_greet"), BotUttered("您好"),
            ActionExecuted("action_listen"))
        add(Restarted())
        add(ActionExecuted("action_listen"))
        for text in MESSAGES[3:]:
            await say(text)
        # a message featurised (the state before the listen holds it) before any
        # DefinePrevUserUtteredFeaturization, then edited by one: a replay from
        # scratch shows the edit in that earlier state too
        add(UserUttered("幸福里小区", {"name": "inform", "confidence": 1.0}))
        add(ActionExecuted("action_listen"))
        add(DefinePrevUserUtteredFeaturization(True))

    asyncio.run(conversation())
    # most steps continued the last replay instead of starting again, and so did most
    # first predictions after a message (the form's unhappy path replays from scratch)
    assert continued > steps // 2
    assert defined_continued > defined // 2 and defined > len(MESSAGES)
