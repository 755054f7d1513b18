"""Hooks into Rasa 3.6 internals, in one place and guarded by Rasa's version.

Rasa 3.6 has no plugin point for these, so each replaces or wraps a private
method; :func:`install_hooks` refuses another Rasa minor version, where a
private method may have changed under us (check each hook against that
version's source before widening :data:`SUPPORTED_RASA`).

* ``Agent.handle_message``: gives each message a request id (kept in the
  message metadata, so the tracker and the action server see it, and in a
  context variable, so every log line carries it), takes a channel-provided
  ``metadata.message_id`` as the message id (the REST channel cannot pass one
  otherwise, and ticket idempotency keys are built from it), counts messages
  per channel, and turns a failure of the action server, the lock store (Redis)
  or the tracker store (PostgreSQL) into ``utter_service_error`` — Rasa would
  answer nothing at all (the REST channel swallows the exception).
* ``RemoteAction.run`` / ``MessageProcessor._run_action``: Rasa's default on an
  unreachable action server is to log, drop the action's events and carry on,
  which leaves the citizen with no answer or a half one and saves a
  conversation that skipped a step. Instead the turn is abandoned *without
  saving the tracker*, so the conversation is exactly as before the message and
  the citizen's retry (same message id) replays it cleanly; any ticket the lost
  turn did create is found again by its idempotency key.
* ``FailSafeTrackerStore``: no silent fallback to an empty in-memory
  conversation when PostgreSQL fails (see :func:`_refuse_fallback`).
* ``MessageProcessor.parse_message`` and ``RegexMessageHandler.process``: NLU
  latency; the citizen's text as written in the parse (the normalizer's copy is
  for the model, so actions and tickets store the original); and **typed text
  is never an intent**. Rasa reads any message
  starting with ``/`` as ``/intent{entities}``, so a citizen could type
  ``/EXTERNAL_ticket_update{…}`` or ``/solved``; and the normalizer turns a
  full-width ``／`` into ``/`` before Rasa looks. Here such a message is taken
  as an intent only when it is exactly the payload of a button the bot offered
  in this conversation (a pressed button: the widget and REST send the payload
  as text, WeChat maps a typed digit to it, Telegram sends it as callback data)
  or a payload a channel made from a verified platform event (a WeChat menu
  click or subscribe), and never for an ``EXTERNAL_*`` intent, which only the console may trigger
  through the authenticated HTTP API. Everything else is read as the text it is.
* ``RemoteAction._validate_action_result``: Rasa calls ``jsonschema.validate``
  on every action server response, which first checks the (constant) schema
  against the 2020-12 metaschema; profiled under load that was a third of the
  Rasa server's CPU. The same check with a validator built once.
* ``DialogueStateTracker.copy`` (with ``_run_action``): the copy of the whole
  session Rasa makes before every action is skipped when there is nothing it
  could protect (no policy events; an utterance, ``action_listen`` or custom
  action, which only read the tracker).
* ``DialogueStateTracker.past_states``: the featurised session computed once per
  tracker state and arguments (RulePolicy asked twice per prediction), and
  continued from the last prediction's replay (:mod:`connectors.replay`).
* ``copy.deepcopy`` in ``rasa.core.processor`` and ``rasa.core.actions.forms``:
  only made for structlog debug lines there; skipped when those are off.
* ``RemoteAction._action_call_format``: with Rasa's selective domain on, a
  form's ``validate_*`` action gets the domain without its response texts
  (rasa_sdk's form validation reads only slots and forms); the active loop goes
  in without ``dataclasses.asdict``'s deep copy of the form's first message.
* ``RulePolicy._get_possible_keys``: the rules checked against a conversation
  narrowed first by the action that just ran and the user's intent
  (:mod:`connectors.rule_index`).
* ``Event.resolve_by_type``: loading a tracker looks up each stored event's
  class by walking every ``Event`` subclass; a name → class table built once
  (unknown names still go to Rasa's own lookup).
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import functools
import logging
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import rasa
from jsonschema.exceptions import best_match
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.shared.constants import DOCS_BASE_URL

from bot import logging as bot_logging
from bot import metrics
from connectors import replay
from connectors.rule_index import wrap_get_possible_keys
from connectors.texts import SERVICE_ERROR_RESPONSE, service_error

logger = logging.getLogger(__name__)

#: the Rasa minor version these hooks were written against and tested with
SUPPORTED_RASA = "3.6."

_action_failure: contextvars.ContextVar[BaseException | None] = contextvars.ContextVar(
    "citizenbot_action_failure", default=None
)


class ActionServerUnavailable(Exception):
    """The action server could not run an action; the turn is abandoned unsaved."""


class TrackerStoreUnavailable(Exception):
    """The tracker store (PostgreSQL) failed; the turn is abandoned unsaved."""


def _refuse_fallback(self: Any, error: Exception) -> None:
    """Replaces Rasa's FailSafeTrackerStore error handlers, which fall back silently.

    Rasa 3.6 answers a tracker-store error by reading an *empty* conversation
    and saving to an in-memory store: the citizen's case is forgotten mid-way,
    and each server keeps its own diverging copy. Raising instead lets the
    message hook apologise and the citizen resend once the database is back.
    """
    raise TrackerStoreUnavailable(f"{type(error).__name__}: {error}") from error


def _request_id(message: UserMessage) -> str:
    metadata = message.metadata if isinstance(message.metadata, dict) else {}
    if not isinstance(message.metadata, dict):
        message.metadata = metadata
    request_id = str(metadata.get("request_id") or bot_logging.request_id_var.get() or "")
    if not request_id:
        request_id = uuid.uuid4().hex
    metadata["request_id"] = request_id
    given = metadata.get("message_id")
    if isinstance(given, (str, int)) and str(given):
        message.message_id = str(given)
    return request_id


def _apology(agent: Any) -> str:
    domain = getattr(getattr(agent, "processor", None), "domain", None)
    variants = (getattr(domain, "responses", None) or {}).get(SERVICE_ERROR_RESPONSE) or []
    for variant in variants:
        if variant.get("text"):
            return str(variant["text"])
    return service_error()


def _dependency(error: BaseException) -> str | None:
    """Which backing service ``error`` says is down, if any (None: a bug, re-raised)."""
    if isinstance(error, ActionServerUnavailable):
        return "action_server"
    if isinstance(error, TrackerStoreUnavailable):
        return "tracker_store"
    from rasa.core.lock_store import LockError
    from redis.exceptions import RedisError
    from sqlalchemy.exc import DBAPIError

    if isinstance(error, (RedisError, LockError)):
        return "lock_store"
    if isinstance(error, DBAPIError):
        return "tracker_store"
    return None


def _wrap_handle_message(original: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def handle_message(self: Any, message: UserMessage) -> Any:
        request_id = _request_id(message)
        token = bot_logging.request_id_var.set(request_id)
        channel = message.input_channel or "unknown"
        metrics.MESSAGES.labels(channel).inc()
        begin = time.perf_counter()
        try:
            result = await original(self, message)
            logger.info("message handled: channel=%s message_id=%s %.0f ms", channel,
                        message.message_id, (time.perf_counter() - begin) * 1000)
            return result
        except Exception as error:
            cause = _dependency(error)
            if cause is None:
                metrics.WEBHOOK_ERRORS.labels(channel).inc()
                raise
            # The turn was not saved (or not started): tell the citizen to send it
            # again; the retry replays it, and tickets are idempotent per message id.
            metrics.SERVICE_ERRORS.labels(cause).inc()
            logger.error("%s unavailable, message %s not processed: %s", cause,
                         message.message_id, error.__cause__ or error)
            output = message.output_channel
            await output.send_text_message(message.sender_id, _apology(self))
            if isinstance(output, CollectingOutputChannel):
                return output.messages
            return None
        finally:
            metrics.MESSAGE_SECONDS.labels(channel).observe(time.perf_counter() - begin)
            bot_logging.request_id_var.reset(token)

    handle_message._citizenbot_hook = True  # type: ignore[attr-defined]
    return handle_message


def _wrap_remote_run(original: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await original(self, *args, **kwargs)
        except Exception as error:
            from rasa.core.actions.action import ActionExecutionRejection

            if not isinstance(error, ActionExecutionRejection) and self.action_endpoint:
                # connection refused/reset, 5xx, timeout: remember it for _run_action,
                # which would otherwise swallow it
                _action_failure.set(error)
            raise

    run._citizenbot_hook = True  # type: ignore[attr-defined]
    return run


#: the tracker whose next ``copy()`` may hand out the tracker itself (see below)
_share_once: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "citizenbot_share_tracker", default=None
)

_RUN_ACTION_ARGS = ("action", "tracker", "output_channel", "nlg", "prediction")


@functools.lru_cache(maxsize=1)
def _read_only_actions() -> tuple[type, ...]:
    """Action classes whose ``run`` only reads the tracker (checked against Rasa 3.6):
    an utterance, ``action_listen``, a custom action (the tracker is serialised for
    the action server and read to fill in response texts)."""
    from rasa.core.actions.action import ActionBotResponse, ActionListen, RemoteAction

    return (ActionBotResponse, ActionListen, RemoteAction)


def _tracker_may_be_shared(action: Any, prediction: Any) -> bool:
    """Whether Rasa's copy of the tracker before ``action`` can be the tracker itself.

    ``MessageProcessor._run_action`` runs every action on a copy (a replay of the
    whole session: profiled ~0.4 ms each, three or four times a message), "as we
    might need to discard the policy events in case of a rejection". With no
    policy events to discard and an action that does not change the tracker it is
    given (exact classes only: a loop action or a subclass gets its copy), the
    copy is indistinguishable from the original.
    """
    return not getattr(prediction, "events", None) and type(action) in _read_only_actions()


def _wrap_tracker_copy(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def copy(self: Any) -> Any:
        if _share_once.get() is self:
            _share_once.set(None)  # once: any later copy in the action is a real one
            return self
        return original(self)

    copy._citizenbot_hook = True  # type: ignore[attr-defined]
    return copy


def _wrap_run_action(original: Callable[..., Awaitable[bool]]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def _run_action(self: Any, *args: Any, **kwargs: Any) -> bool:
        given = dict(zip(_RUN_ACTION_ARGS, args, strict=False), **kwargs)
        shared = given.get("tracker") if _tracker_may_be_shared(
            given.get("action"), given.get("prediction")) else None
        token = _action_failure.set(None)
        share_token = _share_once.set(shared)
        try:
            result = await original(self, *args, **kwargs)
            failure = _action_failure.get()
        finally:
            _share_once.reset(share_token)
            _action_failure.reset(token)
        if failure is not None:
            raise ActionServerUnavailable(str(failure)) from failure
        return result

    _run_action._citizenbot_hook = True  # type: ignore[attr-defined]
    return _run_action


def offered_payloads(events: Iterable[Any]) -> set[str]:
    """Payloads of the buttons the bot showed in a conversation's events."""
    from rasa.shared.core.events import BotUttered

    payloads: set[str] = set()
    for event in events:
        if isinstance(event, BotUttered):
            for button in (event.data or {}).get("buttons") or []:
                payload = button.get("payload") if isinstance(button, dict) else None
                if isinstance(payload, str):
                    payloads.add(payload.strip())
    return payloads


#: intents only the console may trigger, through the authenticated HTTP API
EXTERNAL_INTENT_PREFIX = "EXTERNAL_"
#: metadata a channel sets only on platform events it verified (a WeChat menu click or
#: subscribe carries the menu's payload, e.g. ``/check_status``, as its text)
VERIFIED_EVENT_KEYS = {"wechat": ("wechat_menu", "wechat_event")}


def is_channel_event(message: UserMessage) -> bool:
    """A payload the channel itself made from a verified platform event, not typed text."""
    keys = VERIFIED_EVENT_KEYS.get(message.input_channel or "", ())
    metadata = message.metadata or {}
    return any(metadata.get(key) for key in keys)


def may_be_intent(text: str) -> bool:
    """``/intent{…}`` syntax, and not an ``EXTERNAL_*`` intent (the console's alone)."""
    from rasa.shared.constants import INTENT_MESSAGE_PREFIX

    text = text.strip()
    if not text.startswith(INTENT_MESSAGE_PREFIX):
        return False
    return not text[len(INTENT_MESSAGE_PREFIX):].upper().startswith(EXTERNAL_INTENT_PREFIX)


def is_offered_payload(text: str, events: Iterable[Any]) -> bool:
    """May ``text`` be read as ``/intent{…}``? Only a button the bot offered, never EXTERNAL_."""
    return may_be_intent(text) and text.strip() in offered_payloads(events)


#: set by parse_message for the one message being parsed; read by the regex handler
_payload_allowed: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "citizenbot_payload_allowed", default=False
)


def _wrap_parse(original: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def parse_message(
        self: Any, message: UserMessage, tracker: Any = None, *args: Any, **kwargs: Any
    ) -> Any:
        begin = time.perf_counter()
        text = message.text or ""
        if is_channel_event(message):
            allowed = may_be_intent(text)
        else:
            allowed = tracker is not None and is_offered_payload(text, tracker.events)
        token = _payload_allowed.set(allowed)
        try:
            parse_data = await original(self, message, tracker, *args, **kwargs)
            # The normalizer rewrote the text for the model (full-width → half-width,
            # traditional → simplified); the record keeps what the citizen wrote.
            # Entity values stay as extracted; their offsets refer to the model's copy.
            if isinstance(parse_data, dict) and message.text is not None:
                parse_data["text"] = message.text
            return parse_data
        finally:
            _payload_allowed.reset(token)
            metrics.NLU_SECONDS.observe(time.perf_counter() - begin)

    parse_message._citizenbot_hook = True  # type: ignore[attr-defined]
    return parse_message


def _wrap_regex_process(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def process(self: Any, messages: list[Any], domain: Any = None) -> list[Any]:
        if _payload_allowed.get():
            return original(self, messages, domain)
        return messages  # typed text: the classifiers' reading stands

    process._citizenbot_hook = True  # type: ignore[attr-defined]
    return process


@functools.lru_cache(maxsize=1)
def _action_response_validator() -> Any:
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction

    schema = RemoteAction.action_response_format_spec()
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@functools.lru_cache(maxsize=1)
def _fast_response_validators() -> tuple[Any, dict[str, Any]] | None:
    """Validators for a quick *acceptance* of an action response, or None (no fast path).

    Rasa's schema checks each event against ``oneOf`` 23 event schemas, so every
    event is validated 23 times (profiled: ~5 ms per response). Each branch fixes
    ``event`` to a distinct constant and the outer schema requires ``event``, so
    an event that passes the outer schema and the one branch of its constant
    fails every other branch: it satisfies ``oneOf``. Checking only that branch
    accepts exactly the events the full schema accepts; anything it does not
    accept goes through the full validation, which raises Rasa's error.
    """
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.utils.schemas.events import EVENT_SCHEMA

    spec = RemoteAction.action_response_format_spec()
    events = spec.get("properties", {}).get("events")
    if events != {"type": "array", "items": EVENT_SCHEMA} or set(EVENT_SCHEMA) != {
        "type", "properties", "required", "oneOf"
    } or "event" not in EVENT_SCHEMA["required"]:
        return None  # another Rasa version: use the full validation only
    outer = {**spec, "properties": {**spec["properties"], "events": {"type": "array"}}}
    base = {key: value for key, value in EVENT_SCHEMA.items() if key != "oneOf"}
    by_name: dict[str, Any] = {}
    for branch in EVENT_SCHEMA["oneOf"]:
        const = branch.get("properties", {}).get("event", {}).get("const")
        if not isinstance(const, str) or const in by_name:
            return None
        schema = {**base, "allOf": [branch]}
        by_name[const] = validator_for(schema)(schema)
    return validator_for(outer)(outer), by_name


def _quickly_valid(result: Any) -> bool:
    """True only for a response the full schema accepts (see above); False: check fully."""
    built = _fast_response_validators()
    if built is None or not isinstance(result, dict):
        return False
    outer, by_name = built
    if not outer.is_valid(result):
        return False
    for event in result.get("events") or []:
        name = event.get("event") if isinstance(event, dict) else None
        validator = by_name.get(name) if isinstance(name, str) else None
        if validator is None or not validator.is_valid(event):
            return False
    return True


def _validate_action_result(self: Any, result: dict[str, Any]) -> bool:
    """Rasa's ``jsonschema.validate`` of an action response, same errors, less work.

    The validator is built once (Rasa rebuilt it and re-checked the schema on
    every call) and a valid response is accepted by :func:`_quickly_valid`.
    """
    if _quickly_valid(result):
        return True
    error = best_match(_action_response_validator().iter_errors(result))
    if error is None:
        return True
    error.message += (
        ". Failed to validate Action server response from API, make sure your response "
        f"from the Action endpoint is valid. For more information about the format "
        f"visit {DOCS_BASE_URL}/custom-actions"
    )
    raise error


#: seconds an idle pooled connection to the action server is kept: below the 5 s after
#: which the action server (Sanic) closes idle connections, so no request is sent on a
#: connection the server is closing
KEEPALIVE_SECONDS = 2.0


def _dumps(value: Any) -> str:
    """JSON for request bodies: ujson (the action server's own parser) is several times
    faster than ``json.dumps`` on a whole tracker; anything it refuses goes to json."""
    import json

    import ujson

    try:
        return str(ujson.dumps(value, ensure_ascii=False))
    except (TypeError, ValueError, OverflowError):
        return json.dumps(value)


class _KeptSession:
    """``async with`` over a pooled session that leaves it open."""

    def __init__(self, session: Any) -> None:
        self._session = session

    async def __aenter__(self) -> Any:
        return self._session

    async def __aexit__(self, *_exc: object) -> None:
        return None


_pooled: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], Any]] = (
    weakref.WeakKeyDictionary()
)


def _wrap_endpoint_session(original: Callable[..., Any]) -> Callable[..., Any]:
    """``EndpointConfig.session`` returning one kept-alive session per event loop.

    Rasa opens a new ``aiohttp.ClientSession`` — a new TCP connection — for every
    request to an endpoint, i.e. for every custom action run (profiled: the
    connection set-up was the largest single cost of an action call). One
    session per loop and endpoint configuration keeps connections open between
    calls; requests, headers, timeouts and errors are as before.
    """

    @functools.wraps(original)
    def session(self: Any) -> Any:
        import aiohttp
        from rasa.core.constants import DEFAULT_REQUEST_TIMEOUT

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return original(self)
        key = (repr(sorted((self.headers or {}).items())), repr(self.basic_auth))
        sessions = _pooled.setdefault(loop, {})
        kept = sessions.get(key)
        if kept is None or kept.closed:
            auth = (aiohttp.BasicAuth(self.basic_auth["username"], self.basic_auth["password"])
                    if self.basic_auth else None)
            kept = aiohttp.ClientSession(
                headers=self.headers, auth=auth, json_serialize=_dumps,
                timeout=aiohttp.ClientTimeout(total=DEFAULT_REQUEST_TIMEOUT),
                connector=aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE_SECONDS),
            )
            sessions[key] = kept
        return _KeptSession(kept)

    session._citizenbot_hook = True  # type: ignore[attr-defined]
    return session


async def freeze_loaded_objects(*_args: Any) -> None:
    """After the model is loaded: leave everything allocated so far out of future
    garbage collections (``gc.freeze``).

    A Rasa server holds millions of long-lived objects (TensorFlow, the model, the
    domain); measured, one full collection of them takes ~300 ms, and it runs on
    the event loop whenever allocation counts trigger it — every message waiting
    behind it. Frozen objects stay alive (they are never collected), which for
    what a server loads at start is what happens anyway; new garbage is collected
    as before.
    """
    import gc

    gc.collect()
    gc.freeze()
    logger.info("start-up objects frozen: %d left out of garbage collection",
                gc.get_freeze_count())


async def close_kept_sessions(*_args: Any) -> None:
    """Close this loop's kept-alive sessions (server stop: no 'Unclosed client session')."""
    sessions = _pooled.pop(asyncio.get_running_loop(), {})
    for kept in sessions.values():
        await kept.close()


@functools.lru_cache(maxsize=1)
def _event_classes() -> dict[str, Any]:
    from rasa.shared.core.events import Event
    from rasa.shared.utils.common import all_subclasses

    table: dict[str, Any] = {}
    for cls in all_subclasses(Event):
        table.setdefault(cls.type_name, cls)  # first match wins, as in Rasa's loop
    return table


def _wrap_resolve_by_type(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def resolve_by_type(type_name: str, default: Any = None) -> Any:
        found = _event_classes().get(type_name)
        return found if found is not None else original(type_name, default)

    resolve_by_type._citizenbot_hook = True  # type: ignore[attr-defined]
    return resolve_by_type


def _run_order(runner: Any, targets: tuple[str, ...]) -> list[tuple[str, tuple[str, ...]]]:
    """(node, the nodes it needs) in dependency order for ``targets``; built once per
    runner and target list (Rasa recomputed the minimal graph on every run)."""
    orders = runner.__dict__.setdefault("_citizenbot_orders", {})
    if targets in orders:
        return orders[targets]
    schema = runner._graph_schema.minimal_graph_schema(list(targets))
    order: list[tuple[str, tuple[str, ...]]] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen or name not in schema.nodes:
            return
        seen.add(name)
        needs = tuple(schema.nodes[name].needs.values())
        for need in needs:
            visit(need)
        order.append((name, needs))

    for target in targets:
        visit(target)
    orders[targets] = order
    return order


#: Rasa's dask runner, kept for the tests that compare the two
_ORIGINAL_GRAPH_RUN: Callable[..., Any] | None = None


def _direct_graph_run(
    self: Any, inputs: dict[str, Any] | None = None, targets: list[str] | None = None
) -> dict[str, Any]:
    """``DaskGraphRunner.run`` without dask: the nodes in dependency order, in this thread.

    Rasa runs every NLU parse and every policy prediction (three or more per
    message) through ``dask.get`` — synchronous, one thread — which rebuilt the
    minimal graph and ordered it on every call: profiled, about a quarter of
    the time of a prediction. The same nodes are called with the same inputs
    (``(node name, output)`` pairs, a missing input passed as its name, as dask
    does), and errors surface as before.
    """
    from rasa.engine.exceptions import GraphRunError

    run_targets = tuple(targets if targets else self._graph_schema.target_names)
    order = _run_order(self, run_targets)
    results: dict[str, Any] = {}
    names = {name for name, _ in order}
    for name, value in (inputs or {}).items():
        if isinstance(value, str) and value in names:
            raise GraphRunError(
                f"Input value '{value}' clashes with a node name. Make sure that none "
                f"of the input names passed to the `run` method are the same as node "
                f"names in the graph schema."
            )
        results[name] = (name, value)
    try:
        for name, needs in order:
            if name not in results:
                node = self._instantiated_nodes[name]
                results[name] = node(*[results.get(need, need) for need in needs])
    except RuntimeError as error:
        raise GraphRunError("Error running runner.") from error
    return dict(results[target] for target in run_targets)


def _random_response_for(
    self: Any, utter_action: str, output_channel: str, filled_slots: dict[str, Any]
) -> dict[str, Any] | None:
    """Rasa's choice of a response variant, drawn with ``random.choice``.

    Rasa draws with ``numpy.random.choice``, which first turns the list of
    variant dicts into a numpy object array: profiled at about 2 ms per bot
    message. Same filter (channel and slot conditions), same uniform draw.
    """
    import random

    from rasa.core.nlg.response import ResponseVariationFilter

    if utter_action not in self.responses:
        return None
    suitable = ResponseVariationFilter(self.responses).responses_for_utter_action(
        utter_action, output_channel, filled_slots
    )
    return random.choice(suitable) if suitable else None


def _wrap_is_empty(original: Callable[..., bool]) -> Callable[..., bool]:
    """``Domain.is_empty`` (checked on every message) once per domain object: it
    builds an empty Domain and compares whole dicts, and a loaded domain never changes."""

    @functools.wraps(original)
    def is_empty(self: Any) -> bool:
        cached = self.__dict__.get("_citizenbot_is_empty")
        if cached is None:
            cached = self.__dict__["_citizenbot_is_empty"] = original(self)
        return bool(cached)

    is_empty._citizenbot_hook = True  # type: ignore[attr-defined]
    return is_empty


def _marked_send_domain(domain: Any) -> frozenset[str]:
    """Custom actions the domain marks ``send_domain: true`` (once per domain object)."""
    from rasa.shared.core.constants import ACTION_SHOULD_SEND_DOMAIN

    marked = domain.__dict__.get("_citizenbot_send_domain")
    if marked is None:
        names: set[str] = set()
        for entry in domain.as_dict().get("actions") or []:
            if isinstance(entry, dict):
                names.update(name for name, config in entry.items()
                             if isinstance(config, dict) and config.get(ACTION_SHOULD_SEND_DOMAIN))
        marked = domain.__dict__["_citizenbot_send_domain"] = frozenset(names)
    return frozenset(marked)


#: what a form's validate_* action does not get of the domain (see below)
VALIDATION_DOMAIN_LEFT_OUT = ("responses",)


def _validation_domain(domain: Any) -> dict[str, Any]:
    """The domain as a validate_* action gets it: without the response texts."""
    trimmed = domain.__dict__.get("_citizenbot_validation_domain")
    if trimmed is None:
        trimmed = {key: value for key, value in domain.as_dict().items()
                   if key not in VALIDATION_DOMAIN_LEFT_OUT}
        domain.__dict__["_citizenbot_validation_domain"] = trimmed
    return dict(trimmed)


def _shallow_loop(loop: Any) -> dict[str, Any]:
    """``dataclasses.asdict`` of the active loop without its deep copy."""
    return {field.name: getattr(loop, field.name) for field in dataclasses.fields(loop)}


def _wrap_action_call_format(original: Callable[..., dict[str, Any]]) -> Callable[..., Any]:
    """``RemoteAction._action_call_format``: a validate_* action gets no response texts,
    and the active loop is not deep-copied.

    With ``enable_selective_domain`` (endpoints.yml) Rasa sends the domain only
    to actions marked ``send_domain: true`` — and always, whole, to a form's
    ``validate_<form>`` action, the call made on every turn of a form. rasa_sdk's
    ``FormValidationAction`` reads the domain's slots and forms; the responses
    (11 of its 16 KB) are for Rasa's NLG. Such an action, unless it is itself
    marked ``send_domain: true`` (then it gets everything), gets the domain
    without them.

    ``tracker.current_state`` copies the active loop with ``dataclasses.asdict``,
    which deep-copies the message that started the form (its whole parse:
    ranking, entities, tokens) through a recursive walk: ~0.5 ms a call under
    the profiler, on the event loop, for a request that is JSON-encoded at once
    and never changed. The loop is left out of Rasa's call (set aside for that
    synchronous call, nothing else runs in between) and put in as a shallow dict
    of the same fields. The request is equal to Rasa's otherwise.
    """

    @functools.wraps(original)
    def _action_call_format(self: Any, tracker: Any, domain: Any) -> dict[str, Any]:
        loop, tracker.active_loop = tracker.active_loop, None
        try:
            result = original(self, tracker, domain)
        finally:
            tracker.active_loop = loop
        if loop is not None:
            result["tracker"]["active_loop"] = _shallow_loop(loop)
        name = self.name()
        if ("domain" in result and name.startswith("validate_")
                and self._is_selective_domain_enabled()
                and name not in _marked_send_domain(domain)):
            result["domain"] = _validation_domain(domain)
        return result

    _action_call_format._citizenbot_hook = True  # type: ignore[attr-defined]
    return _action_call_format


def _wrap_past_states(original: Callable[..., list[Any]]) -> Callable[..., list[Any]]:
    """``DialogueStateTracker.past_states`` computed once per tracker state and arguments.

    Every policy prediction featurises the whole session: it replays the
    session's events into a fresh tracker and builds a state at each action
    (``generate_all_prior_trackers``). RulePolicy does it twice per prediction
    with identical arguments (once to match rules on text, once on intents;
    the difference is applied afterwards), so the second is the first's result.
    The states depend only on the events (replayed from scratch) and the
    arguments; a result is reused while the tracker has the same number of
    events and the same last event, and handed out as a copy (callers change
    the last state in place). A new result continues the last replay where that
    gives the same states (:mod:`connectors.replay`).
    """

    @functools.wraps(original)
    def past_states(
        self: Any,
        domain: Any,
        omit_unset_slots: bool = False,
        ignore_rule_only_turns: bool = False,
        rule_only_data: dict[str, Any] | None = None,
    ) -> list[Any]:
        events = self.events
        last = events[-1] if events else None
        memo = self.__dict__.get("_citizenbot_states")
        if memo is None or memo[0] != len(events) or memo[1] is not last:
            memo = (len(events), last, {})
            self.__dict__["_citizenbot_states"] = memo
        key = (id(domain), omit_unset_slots, ignore_rule_only_turns, id(rule_only_data))
        kept = memo[2].get(key)
        if kept is not None and kept[0] is domain and kept[1] is rule_only_data:
            return replay.copy_states(kept[2])
        if not ignore_rule_only_turns and replay.serves(self, domain):
            states = replay.past_states(self, domain, omit_unset_slots)
        else:
            states = original(self, domain, omit_unset_slots=omit_unset_slots,
                              ignore_rule_only_turns=ignore_rule_only_turns,
                              rule_only_data=rule_only_data)
        memo[2][key] = (domain, rule_only_data, replay.copy_states(states))
        return states

    past_states._citizenbot_hook = True  # type: ignore[attr-defined]
    return past_states


def _structlog_debug_on() -> bool:
    """Whether structlog's debug lines are written (Rasa's filtering logger makes a
    filtered level's method a no-op called ``_nop``)."""
    import structlog

    debug = getattr(structlog.get_config().get("wrapper_class"), "debug", None)
    return debug is None or getattr(debug, "__name__", "") != "_nop"


class _LogOnlyCopy:
    """The ``copy`` module as ``rasa.core.processor`` and ``rasa.core.actions.forms``
    see it.

    Every ``copy.deepcopy`` in those two modules (Rasa 3.6; a test checks the
    source) is an argument of a ``structlogger.debug`` call, evaluated before
    structlog drops the line: the events of every action, the parse data, the
    latest message on every form turn — deep copies made and thrown away on
    each message (profiled ~3 % of a Rasa server's time). With debug lines off
    the value itself is passed (nobody reads it); with them on, a real copy.
    """

    def __getattr__(self, name: str) -> Any:
        import copy

        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        import copy

        return copy.deepcopy(value, memo) if _structlog_debug_on() else value


#: modules whose ``copy.deepcopy`` calls only feed structlog debug lines
LOG_ONLY_COPY_MODULES = ("rasa.core.processor", "rasa.core.actions.forms")


def install_typed_intent_guard() -> None:
    """Rasa unpacks ``/intent{…}`` only for offered buttons (any process that parses)."""
    from rasa.nlu.classifiers.regex_message_handler import RegexMessageHandler

    if not getattr(RegexMessageHandler.process, "_citizenbot_hook", False):
        RegexMessageHandler.process = _wrap_regex_process(
            RegexMessageHandler.process
        )


def install_hooks() -> None:
    """Patch Rasa once per process (see the module docstring for why each)."""
    if not rasa.__version__.startswith(SUPPORTED_RASA):
        raise RuntimeError(
            f"connectors.rasa_hooks patches Rasa {SUPPORTED_RASA}x internals, "
            f"but Rasa {rasa.__version__} is installed"
        )
    from rasa.core.actions.action import RemoteAction
    from rasa.core.agent import Agent
    from rasa.core.nlg.response import TemplatedNaturalLanguageGenerator
    from rasa.core.policies.rule_policy import RulePolicy
    from rasa.core.processor import MessageProcessor
    from rasa.core.tracker_store import FailSafeTrackerStore
    from rasa.engine.runner.dask import DaskGraphRunner
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import Event
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.utils.endpoints import EndpointConfig

    install_typed_intent_guard()
    targets = (
        (DialogueStateTracker, "copy", _wrap_tracker_copy),
        (DialogueStateTracker, "past_states", _wrap_past_states),
        (EndpointConfig, "session", _wrap_endpoint_session),
        (Domain, "is_empty", _wrap_is_empty),
        (Agent, "handle_message", _wrap_handle_message),
        (RemoteAction, "run", _wrap_remote_run),
        (RemoteAction, "_action_call_format", _wrap_action_call_format),
        (MessageProcessor, "_run_action", _wrap_run_action),
        (MessageProcessor, "parse_message", _wrap_parse),
        (RulePolicy, "_get_possible_keys", wrap_get_possible_keys),
    )
    for owner, name, wrap in targets:
        current = getattr(owner, name)
        if not getattr(current, "_citizenbot_hook", False):
            setattr(owner, name, wrap(current))
    RemoteAction._validate_action_result = _validate_action_result
    TemplatedNaturalLanguageGenerator._random_response_for = (
        _random_response_for
    )
    global _ORIGINAL_GRAPH_RUN
    if DaskGraphRunner.run is not _direct_graph_run:
        _ORIGINAL_GRAPH_RUN = DaskGraphRunner.run
        DaskGraphRunner.run = _direct_graph_run
    if not getattr(Event.resolve_by_type, "_citizenbot_hook", False):
        Event.resolve_by_type = staticmethod(
            _wrap_resolve_by_type(Event.resolve_by_type)
        )
    import copy
    import importlib

    for module_name in LOG_ONLY_COPY_MODULES:
        module = importlib.import_module(module_name)
        if getattr(module, "copy", None) is copy:
            module.copy = _LogOnlyCopy()  # type: ignore[attr-defined]
    FailSafeTrackerStore.on_tracker_store_error = _refuse_fallback
    FailSafeTrackerStore.on_tracker_store_retrieve_error = (
        _refuse_fallback
    )
