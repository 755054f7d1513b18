"""Load on the production profile: REST and WeChat, 10/50/100 conversations, 1 vs 2 servers.

Each configuration is a real ``citizenbot run --profile production`` on
PostgreSQL and Redis (fresh databases, dropped afterwards) with N Rasa servers
and N action servers. Load is :func:`bench.load.open_loop` (Poisson arrivals at
``--rate`` msg/s) spread over C conversations: a conversation sends its next
message only after the answer, so at most C messages are in flight — with a
rate above what the servers take, C is the concurrency the table is about.
With two servers a conversation sticks to one of them (as nginx's hash does).

Usage: ``python -m bench.load.run [--seconds 15] [--rate 60]
[--conversations 10,50,100] [--servers 1,2] [--paths rest,wechat]``
Needs PostgreSQL and Redis on 127.0.0.1 (``tests/production/cluster.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.load import Result, open_loop, rest_send, sticky
from bench.wechat.run import MESSAGES, wechat_send
from tests.channels.conftest import Account
from tests.channels.wechat_sim import WeChatServer
from tests.production.cluster import REST_TOKEN, Cluster, Databases
from tests.recording_server import RecordingServer

HEADER = ["servers", "path", "conversations", "offered/s", "ok/sent", "p50 ms", "p95 ms",
          "p99 ms", "msg/s"]


async def measure(cluster: Cluster, account: Account, paths: list[str],
                  conversations: list[int], rate: float, seconds: float) -> list[Result]:
    rest = sticky([functools.partial(rest_send, url=f"{url}/webhooks/rest/webhook",
                                     token=REST_TOKEN) for url in cluster.rasa_urls])
    wechat = sticky([functools.partial(
        wechat_send, mode="safe",
        wechat=WeChatServer(f"{url}/webhooks/wechat/webhook", account.token, account.appid,
                            account.aes_key)) for url in cluster.rasa_urls])
    by_path = {"rest": rest, "wechat": wechat}
    # warm-up: first calls load lazily built parts in every process
    await open_loop("warmup", rest, MESSAGES, rate=10, seconds=4, conversations=10)
    results = []
    for path in paths:
        for count in conversations:
            label = f"{path}-{cluster.rasa_servers}x-{count}"
            result = await open_loop(label, by_path[path], MESSAGES, rate=rate,
                                     seconds=seconds, conversations=count)
            results.append(result)
            print(f"  {label}: p50 {result.percentile(50):.0f} ms, "
                  f"{result.throughput:.1f} msg/s", flush=True)
    return results


def run_configuration(model: Path, servers: int, args: argparse.Namespace,
                      recording: RecordingServer) -> list[Result]:
    account = Account()
    databases = Databases(prefix="cbbench").create()
    cluster = Cluster(Path(tempfile.mkdtemp(prefix="bench-load-")), model, databases,
                      rasa_servers=servers, action_servers=servers,
                      extra_env={**account.env(recording.base_url, 4.0), "LOG_LEVEL": "WARNING"})
    try:
        print(f"starting {servers} Rasa + {servers} action server(s) …", flush=True)
        cluster.start()
        return asyncio.run(measure(cluster, account, args.paths, args.conversations,
                                   args.rate, args.seconds))
    finally:
        cluster.stop()
        databases.drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rate", type=float, default=60.0, help="offered messages/s")
    parser.add_argument("--conversations", default="10,50,100")
    parser.add_argument("--servers", default="1,2")
    parser.add_argument("--paths", default="rest,wechat")
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args()
    args.conversations = [int(n) for n in args.conversations.split(",")]
    args.paths = [p for p in args.paths.split(",") if p]

    from bot.model import ensure_model

    model = (args.model or ensure_model()).resolve()
    recording = RecordingServer().start()
    table = Table(title=f"production profile, offered {args.rate:.0f} msg/s, "
                        f"{args.seconds:.0f} s per row (2 shared cores: noisy)")
    for column in HEADER:
        table.add_column(column)
    try:
        for servers in (int(n) for n in args.servers.split(",")):
            for result in run_configuration(model, servers, args, recording):
                path, _servers, count = result.label.rsplit("-", 2)
                table.add_row(str(servers), path, count, *result.row()[1:])
    finally:
        recording.stop()
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
