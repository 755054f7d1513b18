"""Operations channel: readiness, metrics, request ids and a polite answer when actions fail.

Declared in ``credentials.yml`` like a chat channel because an ``InputChannel``
is the one documented way to add routes to the Rasa server:

* ``GET /webhooks/ops/health`` — the process answers (liveness).
* ``GET /webhooks/ops/ready`` — 200 only when the model is loaded and the
  tracker store, the ticket database, the lock store (Redis) and the action
  server all answer; 503 with the failing checks otherwise. A load balancer
  takes a server out of rotation on 503.
* ``GET /webhooks/ops/metrics`` — Prometheus text format (:mod:`bot.metrics`).

Loading this module installs the Rasa hooks of :mod:`connectors.rasa_hooks`
(one place, idempotent), because a channel module is what every Rasa server loads.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint, Sanic, response
from sanic.request import Request
from sanic.response import BaseHTTPResponse, HTTPResponse

from bot import logging as bot_logging
from bot import metrics
from connectors.rasa_hooks import close_kept_sessions, freeze_loaded_objects, install_hooks

logger = logging.getLogger(__name__)

#: seconds each readiness check may take
CHECK_TIMEOUT = 3.0


# -- readiness ------------------------------------------------------------------------


def _inner_tracker_store(agent: Any) -> Any:
    store = getattr(agent, "tracker_store", None)
    # Rasa 3.6 wraps the configured store in an AwaitableTrackerStore
    return getattr(store, "_tracker_store", store)


def _sql_ping(engine: Any) -> None:
    from sqlalchemy import text

    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


@functools.lru_cache(maxsize=4)
def _ticket_engine(url: str) -> Any:
    from sqlalchemy import create_engine

    options: dict[str, Any] = {"pool_pre_ping": True}
    if not url.startswith("sqlite"):
        options.update(pool_size=1, max_overflow=1, connect_args={"connect_timeout": 3})
    return create_engine(url, **options)


async def _check(name: str, probe: Callable[[], Any], results: dict[str, str]) -> None:
    try:
        outcome = probe()
        if inspect.isawaitable(outcome):  # coroutines and executor futures alike
            await asyncio.wait_for(outcome, CHECK_TIMEOUT)
        results[name] = "ok"
    except Exception as error:  # every failure is a "not ready" reason
        results[name] = f"error: {type(error).__name__}: {error}"[:300]


async def readiness(app: Sanic) -> dict[str, str]:
    """Each dependency's state: ``ok`` or the error."""
    from bot.settings import get_settings

    agent = getattr(app.ctx, "agent", None)
    results: dict[str, str] = {}
    results["model"] = "ok" if agent is not None and agent.is_ready() else "error: not loaded"
    loop = asyncio.get_running_loop()

    def in_thread(fn: Callable[[], Any]) -> Callable[[], Awaitable[Any]]:
        return lambda: loop.run_in_executor(None, fn)

    tracker_store = _inner_tracker_store(agent)
    engine = getattr(tracker_store, "engine", None)
    if engine is not None:
        await _check("tracker_store", in_thread(lambda: _sql_ping(engine)), results)
    database_url = get_settings().database_url
    await _check(
        "ticket_store", in_thread(lambda: _sql_ping(_ticket_engine(database_url))), results
    )
    lock_store = getattr(agent, "lock_store", None)
    redis_client = getattr(lock_store, "red", None)
    if redis_client is not None:
        await _check("lock_store", in_thread(redis_client.ping), results)
    endpoint = getattr(agent, "action_endpoint", None)
    if endpoint is not None and getattr(endpoint, "url", None):
        health = endpoint.url.rsplit("/webhook", 1)[0] + "/health"

        async def action_server() -> None:
            async with httpx.AsyncClient(timeout=CHECK_TIMEOUT) as client:
                (await client.get(health)).raise_for_status()

        await _check("action_server", action_server, results)
    return results


# -- the channel ----------------------------------------------------------------------


def _count_webhook_errors(request: Request, reply: BaseHTTPResponse) -> None:
    """App-wide response middleware: 5xx answers on channel webhooks, per channel."""
    path = request.path or ""
    if reply is not None and reply.status >= 500 and path.startswith("/webhooks/"):
        metrics.WEBHOOK_ERRORS.labels(
            path.split("/")[2] if path.count("/") >= 2 else path
        ).inc()


class OpsInput(InputChannel):
    """``/webhooks/ops/*``: health, readiness and metrics of this Rasa server."""

    @classmethod
    def name(cls) -> str:
        return "ops"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        ops = Blueprint("citizenbot_ops", __name__)
        try:
            app = Sanic.get_app()
            app.register_middleware(_count_webhook_errors, "response")
            app.register_listener(close_kept_sessions, "before_server_stop")
            app.register_listener(freeze_loaded_objects, "after_server_start")
        except Exception:  # several apps (tests): 5xx counting is optional
            logger.debug("webhook 5xx counting not installed", exc_info=True)

        @ops.route("/health", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @ops.route("/ready", methods=["GET"])
        async def ready(request: Request) -> HTTPResponse:
            checks = await readiness(request.app)
            ok = all(value == "ok" for value in checks.values())
            return response.json({"ready": ok, "checks": checks}, status=200 if ok else 503)

        @ops.route("/metrics", methods=["GET"])
        async def metrics_route(request: Request) -> HTTPResponse:
            from bot.settings import get_settings

            url = get_settings().database_url
            loop = asyncio.get_running_loop()
            try:
                extra = await asyncio.wait_for(
                    loop.run_in_executor(None, metrics.ticket_samples, url), CHECK_TIMEOUT
                )
                extra.append(metrics.store_up(True))
            except Exception:  # metrics must answer while the DB is down
                extra = [metrics.store_up(False)]
            return response.text(metrics.render(extra=extra), content_type=metrics.CONTENT_TYPE)

        return ops


install_hooks()
if os.environ.get(bot_logging.ENV_SERVICE):
    # Started by `citizenbot run`: Rasa replaced our handlers with coloredlogs' after
    # reading --logging-config-file; channels load after that, so take logging back.
    bot_logging.install()
