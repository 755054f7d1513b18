"""Fast checks of the production pieces: log masking, metrics format, process plan, nginx."""

from __future__ import annotations

import io
import json
import logging
import shutil
import subprocess
from pathlib import Path

import pytest

from bot import metrics
from bot.logging import JsonFormatter, MaskingFilter, TextFormatter, config_dict, mask_log_text
from bot.settings import ROOT, load_settings

PHONE = "13812345678"
ID_NUMBER = "110101199003071234"


def _emit(formatter: logging.Formatter, message: str, *args: object,
          exc: BaseException | None = None) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(MaskingFilter())
    logger = logging.getLogger(f"test.production.{id(stream)}")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    if exc is None:
        logger.info(message, *args)
    else:
        try:
            raise exc
        except type(exc):
            logger.exception(message, *args)
    return stream.getvalue()


@pytest.mark.parametrize("formatter", [JsonFormatter(service="t"), TextFormatter()])
def test_phone_and_id_numbers_are_masked_in_message_args_and_exceptions(
    formatter: logging.Formatter,
) -> None:
    out = _emit(formatter, "电话%s 身份证%s", PHONE, ID_NUMBER)
    out += _emit(formatter, "failed", exc=ValueError(f"bad input 手机{PHONE}"))
    assert PHONE not in out and ID_NUMBER not in out
    assert "138****5678" in out


def test_json_escaped_text_from_structlog_is_masked() -> None:
    # Rasa's structlog renders with ASCII escapes: the hex digits before the number
    # must not hide it from the masking patterns.
    rendered = json.dumps({"text": f"号{PHONE}"})
    assert PHONE in rendered
    assert PHONE not in mask_log_text(rendered)


def test_json_lines_carry_service_and_request_id() -> None:
    from bot.logging import request_id_var

    token = request_id_var.set("req-42")
    try:
        line = json.loads(_emit(JsonFormatter(service="rasa-1"), "hello"))
    finally:
        request_id_var.reset(token)
    assert line["service"] == "rasa-1" and line["request_id"] == "req-42"


def test_dict_config_is_accepted_by_logging() -> None:
    logging.config.dictConfig({**config_dict(json_lines=True), "root": {"level": "WARNING",
                                                                        "handlers": []}})


def _scrape(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The exposition as Prometheus reads it: (sample name, labels) -> value."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_exposition_is_what_prometheus_reads() -> None:
    before = _scrape(metrics.render())
    key = ("citizenbot_messages_total", (("channel", 'we"ird\n'),))
    metrics.MESSAGES.labels('we"ird\n').inc()
    metrics.NLU_SECONDS.observe(0.02)
    after = _scrape(metrics.render())
    assert after[key] == before.get(key, 0) + 1
    bucket = ("citizenbot_nlu_seconds_bucket", (("le", "0.025"),))
    assert after[bucket] == before.get(bucket, 0) + 1
    assert after[("citizenbot_nlu_seconds_bucket", (("le", "+Inf"),))] >= 1


def test_ticket_metrics_from_the_store(tmp_path: Path) -> None:
    from cryptography.fernet import Fernet

    from bot.tickets import NewTicket, TicketStore

    settings = load_settings({"VAR_DIR": str(tmp_path), "PII_KEY": Fernet.generate_key().decode()})
    store = TicketStore(settings.database_url, settings=settings, upgrade=True)
    store.create(NewTicket(channel="wechat", kind="complaint", summary="噪音",
                           description="楼下烧烤店半夜噪音扰民"))
    families = metrics.ticket_samples(settings.database_url)
    scraped = _scrape(metrics.render(extra=[*families, metrics.store_up(True)]))
    assert scraped[("citizenbot_tickets_created_total", (("channel", "wechat"),))] == 1
    assert scraped[("citizenbot_sla_breached_open_tickets", ())] == 0
    assert scraped[("citizenbot_ticket_store_up", ())] == 1
    store.dispose()


def test_production_plan_numbers_ports_and_pairs_servers(tmp_path: Path) -> None:
    from bot.runner import check_production, scale_out, services

    settings = load_settings({
        "VAR_DIR": str(tmp_path), "RASA_PORT": "7000", "ACTION_PORT": "7100",
        "RASA_TOKEN": "t", "DATABASE_URL": "postgresql://db/tickets",
        "TRACKER_STORE_URL": "postgresql://db/tracker", "REDIS_URL": "redis://127.0.0.1/1",
    })
    assert check_production(settings) == []
    plan = scale_out(settings, services(settings, tmp_path / "m.tar.gz"), rasa_servers=3,
                     action_servers=2, logging_config=tmp_path / "logging.json")
    by_name = {s.name: s for s in plan}
    assert [by_name[f"action server {i}"].port for i in (1, 2)] == [7100, 7101]
    assert [by_name[f"Rasa server {i}"].port for i in (1, 2, 3)] == [7000, 7001, 7002]
    endpoints = [by_name[f"Rasa server {i}"].env["ACTION_ENDPOINT_URL"] for i in (1, 2, 3)]
    assert endpoints == ["http://127.0.0.1:7100/webhook", "http://127.0.0.1:7101/webhook",
                         "http://127.0.0.1:7100/webhook"]
    assert "--logging-config-file" in by_name["Rasa server 2"].command
    assert "--logging-config_file" in by_name["action server 2"].command
    assert ":7002/" in by_name["Rasa server 3"].health_url


def test_production_refuses_sqlite_and_missing_redis(tmp_path: Path) -> None:
    from bot.runner import check_production

    problems = check_production(load_settings({"VAR_DIR": str(tmp_path)}))
    assert any("DATABASE_URL" in p for p in problems)
    assert any("TRACKER_STORE_URL" in p for p in problems)
    assert any("REDIS_URL" in p for p in problems)


def test_nginx_config_is_valid(tmp_path: Path) -> None:
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists()
                                      else None)
    if nginx is None:
        pytest.skip("nginx not installed (apt-get install nginx)")
    shipped = ROOT / "deploy" / "nginx" / "citizenbot.conf"
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        "events {}\n"
        f"http {{\n  access_log off;\n  client_body_temp_path {tmp_path};\n"
        f"  include {shipped};\n}}\n"
    )
    result = subprocess.run([nginx, "-t", "-c", str(main), "-p", str(tmp_path)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    text = shipped.read_text()
    assert "hash $remote_addr consistent" in text  # sticky socket.io sessions


def test_action_responses_are_still_validated_after_the_speed_up() -> None:
    """The hook validates with a validator built once; bad responses stay refused."""
    from jsonschema import ValidationError
    from rasa.core.actions.action import RemoteAction

    from connectors.rasa_hooks import install_hooks

    install_hooks()
    action = RemoteAction("action_x", None)
    good = {"events": [{"event": "slot", "name": "a", "value": 1}], "responses": [{"text": "好"}]}
    assert action._validate_action_result(good)
    for bad in ({"events": [{"event": "no_such_event"}]}, {"responses": "好"}):
        with pytest.raises(ValidationError, match="Failed to validate Action server response"):
            action._validate_action_result(bad)


def test_stored_events_still_resolve_to_their_classes() -> None:
    from rasa.shared.core.events import ActionExecuted, Event, SlotSet, UserUttered

    from connectors.rasa_hooks import install_hooks

    install_hooks()
    assert Event.resolve_by_type("slot") is SlotSet
    assert Event.resolve_by_type("user") is UserUttered
    assert Event.resolve_by_type("action") is ActionExecuted
    assert Event.resolve_by_type("topic") is None
    with pytest.raises(ValueError, match="Unknown event name"):
        Event.resolve_by_type("no_such_event")
    restored = Event.from_parameters({"event": "slot", "name": "case_place", "value": "人民路"})
    assert restored == SlotSet("case_place", "人民路")
