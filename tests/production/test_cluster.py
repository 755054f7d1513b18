"""Scaled out on PostgreSQL and Redis: 2 Rasa servers + 2 action servers, and faults.

One cluster for the whole module (starting four TensorFlow-loading processes on
two shared cores takes minutes), in fresh databases dropped afterwards. The
tests run in file order; each uses its own conversations. Logging is at DEBUG so
Rasa really writes the citizens' messages into its logs — the masking test
would prove nothing at INFO, where Rasa logs no message text.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.production.cluster import (
    Cluster,
    Databases,
    pg_available,
    pg_ctl,
    redis_available,
    redis_start,
    redis_stop,
    wait_port,
)

pytestmark = [
    pytest.mark.stack,
    pytest.mark.postgres,
    pytest.mark.redis,
    # it restarts the machine's PostgreSQL and stops Redis: nothing else may use them then
    pytest.mark.exclusive,
    pytest.mark.skipif(not (pg_available() and redis_available()),
                       reason="needs PostgreSQL and Redis on 127.0.0.1"),
]

COMPLAINT = [
    "我要投诉小区楼下烧烤店每天半夜还在营业，油烟和噪音很大",
    "幸福里小区3栋楼下",
    "最近一个月每天晚上",
    "不留",
    "确认",
]
NUMBER = re.compile(r"GD\d{8}-\d{4}")
PHONE = "13812345678"
ID_NUMBER = "110101199003071234"
APOLOGY = "抱歉"


@pytest.fixture(scope="module")
def cluster(model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    databases = Databases(prefix="cbtest").create()
    running = Cluster(tmp_path_factory.mktemp("cluster"), model, databases,
                      extra_env={"LOG_LEVEL": "DEBUG"})
    try:
        running.start()
        yield running
    finally:
        running.stop()
        databases.drop()
        if running.log_path and running.log_path.exists():
            # pytest's tmp dirs rotate fast on a shared machine: keep the last log
            shutil.copy(running.log_path, Path(tempfile.gettempdir()) / "citizenbot-cluster.log")


def _ticket_numbers(text: str) -> list[str]:
    return NUMBER.findall(text)


def test_one_conversation_across_both_servers_files_one_ticket(cluster: Cluster) -> None:
    first, second = cluster.rasa_urls
    reply = ""
    for index, turn in enumerate(COMPLAINT):
        reply = cluster.say_text((first, second)[index % 2], "scale-1", turn,
                                 message_id=f"scale-1-{index}")
    numbers = _ticket_numbers(reply)
    assert numbers, reply
    tickets = [t for t in cluster.tickets() if t["sender_id"] == "rest:scale-1"]
    assert [t["number"] for t in tickets] == numbers[:1]
    # the request id of the confirming message reached the ticket and the logs
    request_id = json.loads(tickets[0]["facts"])["request_id"]
    assert request_id
    log = cluster.log(10**8)
    assert f'"request_id": "{request_id}"' in log


def test_readiness_and_metrics(cluster: Cluster) -> None:
    for url in cluster.rasa_urls:
        ready = httpx.get(f"{url}/webhooks/ops/ready", timeout=10)
        assert ready.status_code == 200, ready.text
        assert set(ready.json()["checks"]) >= {
            "model", "tracker_store", "ticket_store", "lock_store", "action_server"}
    text = httpx.get(f"{cluster.rasa_urls[0]}/webhooks/ops/metrics", timeout=10).text
    assert re.search(r'^citizenbot_messages_total\{channel="rest"\} [1-9]', text, re.M)
    assert "citizenbot_nlu_seconds_bucket" in text
    assert re.search(r'^citizenbot_tickets_created_total\{channel="rest"\} [1-9]', text, re.M)
    assert "citizenbot_sla_breached_open_tickets" in text
    assert "citizenbot_ticket_store_up 1" in text


def test_personal_data_never_reaches_any_log(cluster: Cluster) -> None:
    first, second = cluster.rasa_urls
    cluster.say_text(first, "pii-1", f"我要投诉，我的电话{PHONE}，身份证{ID_NUMBER}，楼下噪音扰民")
    cluster.say_text(second, "pii-1", f"联系电话 {PHONE}")
    time.sleep(1)
    log = cluster.log(10**8)
    assert PHONE not in log
    assert ID_NUMBER not in log
    # ... and yet Rasa (DEBUG) did log the message: masked
    assert "138****5678" in log
    services = {json.loads(line)["service"] for line in log.splitlines()
                if line.startswith('{"time"')}
    assert {"rasa-1", "rasa-2", "actions-1", "actions-2", "runner"} <= services, services


def test_action_server_killed_mid_conversation(cluster: Cluster) -> None:
    url = cluster.rasa_urls[0]  # Rasa server 1 calls action server 1
    for index, turn in enumerate(COMPLAINT[:-1]):
        cluster.say_text(url, "fault-actions", turn, message_id=f"fa-{index}")
    old_pid = cluster.kill("action server 1")
    time.sleep(0.3)
    reply = cluster.say_text(url, "fault-actions", "确认", message_id="fa-confirm")
    assert APOLOGY in reply and not _ticket_numbers(reply), reply
    assert httpx.get(f"{url}/webhooks/ops/ready", timeout=10).status_code == 503
    cluster.wait_restarted("action server 1", old_pid,
                           f"http://127.0.0.1:{cluster.action_port}/health")
    # the citizen sends the same message again (same message id): one ticket
    reply = cluster.say_text(url, "fault-actions", "确认", message_id="fa-confirm")
    numbers = _ticket_numbers(reply)
    assert numbers, reply
    tickets = [t for t in cluster.tickets() if t["sender_id"] == "rest:fault-actions"]
    assert [t["number"] for t in tickets] == numbers[:1]
    metrics = httpx.get(f"{url}/webhooks/ops/metrics", timeout=10).text
    assert 'citizenbot_service_errors_total{cause="action_server"}' in metrics


def _conversation(cluster: Cluster, sender: str, url: str, acknowledged: dict[str, str],
                  errors: list[str], stop_at: float) -> None:
    """One citizen filing a complaint, resending a turn (same id) until it is answered."""
    for index, turn in enumerate(COMPLAINT):
        while time.monotonic() < stop_at:
            try:
                reply = cluster.say_text(url, sender, turn, message_id=f"{sender}-{index}")
            except httpx.HTTPError as error:
                errors.append(repr(error))
                time.sleep(1)
                continue
            if not reply or APOLOGY in reply:
                time.sleep(1)  # not processed (or not filed): send the same message again
                continue
            numbers = _ticket_numbers(reply)
            if numbers:
                acknowledged[sender] = numbers[0]
            break


def test_postgres_restart_under_load_keeps_every_acknowledged_ticket(cluster: Cluster) -> None:
    acknowledged: dict[str, str] = {}
    errors: list[str] = []
    stop_at = time.monotonic() + 240
    threads = [
        threading.Thread(target=_conversation, args=(
            cluster, f"pg-{n}", cluster.rasa_urls[n % 2], acknowledged, errors, stop_at))
        for n in range(6)
    ]
    try:
        for thread in threads:
            thread.start()
        time.sleep(4)
        pg_ctl("restart")
        for thread in threads:
            thread.join(timeout=max(1.0, stop_at - time.monotonic()))
    finally:
        if not pg_available():
            pg_ctl("start")
        wait_port(5432, open_=True)
    assert acknowledged, (errors, cluster.log())
    stored = {t["number"]: t for t in cluster.tickets()}
    for sender, number in acknowledged.items():
        assert number in stored, (sender, number)
    # exactly once: no conversation got two tickets
    senders = [t["sender_id"] for t in stored.values() if t["sender_id"].startswith("rest:pg-")]
    assert len(senders) == len(set(senders)), senders


def test_redis_down_gives_a_clear_error_and_recovers(cluster: Cluster) -> None:
    url = cluster.rasa_urls[1]
    try:
        redis_stop()
        # readiness first: other test sessions on this machine may bring Redis back soon
        ready = httpx.get(f"{url}/webhooks/ops/ready", timeout=15)
        assert ready.status_code == 503
        assert ready.json()["checks"]["lock_store"].startswith("error")
        reply = cluster.say_text(url, "fault-redis", "你好")
        assert APOLOGY in reply, reply
        assert "lock_store unavailable" in cluster.log(20000)
    finally:
        redis_start()
    deadline = time.monotonic() + 30
    while not cluster.ready(url) and time.monotonic() < deadline:
        time.sleep(0.5)
    reply = cluster.say_text(url, "fault-redis", "你好")
    assert reply and APOLOGY not in reply, reply
