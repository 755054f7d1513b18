"""Where a message's time goes: cProfile of the Rasa and action servers under load.

Starts a real ``citizenbot run`` (default profile; with ``--profile production``
one Rasa server and one action server on PostgreSQL + Redis, which must answer
on 127.0.0.1) with :mod:`bench.profiling.sitecustomize` on its PYTHONPATH, warms it up, starts
the profilers (SIGUSR1), offers open-loop load, stops them (SIGUSR2) and prints
the functions with the most own and cumulative time per server. The ``.prof``
files stay in ``--out`` for ``python -m pstats`` or snakeviz.

Usage: ``python -m bench.profile [--rate 20] [--seconds 20] [--path rest|wechat]
[--profile default|production] [--out reports/profile] [--model PATH]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import pstats
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench.load import open_loop, rest_send
from bench.wechat.run import MESSAGES, wechat_send
from bot.settings import ROOT
from tests.channels.conftest import Account
from tests.channels.wechat_sim import WeChatServer
from tests.recording_server import RecordingServer
from tests.stack import Stack


def _pids(var_dir: Path) -> dict[str, int]:
    path = var_dir / "run" / "processes.json"
    deadline = time.monotonic() + 120
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.5)  # written once every service (the console too) answers
    table = json.loads(path.read_text())
    return {row["name"]: row["pid"] for row in table
            if row["pid"] and ("Rasa" in row["name"] or "action" in row["name"])}


def _signal(pids: dict[str, int], signum: int) -> None:
    for pid in pids.values():
        os.kill(pid, signum)


@contextlib.contextmanager
def _servers(profile: str, var_dir: Path, model: Path,
             env: dict[str, str]) -> Iterator[tuple[str, str]]:
    """(Rasa URL, REST token) of a started ``citizenbot run``, stopped afterwards: the
    default profile, or one Rasa and one action server on PostgreSQL + Redis."""
    if profile != "production":
        stack = Stack(var_dir=var_dir, model=model, extra_env=env).start()
        try:
            yield stack.rasa_url, ""
        finally:
            stack.stop()
        return
    from tests.production.cluster import REST_TOKEN, Cluster, Databases

    databases = Databases(prefix="cbprof").create()
    cluster = Cluster(var_dir, model, databases, rasa_servers=1, action_servers=1,
                      extra_env=env)
    try:
        cluster.start()
        yield cluster.rasa_urls[0], REST_TOKEN
    finally:
        cluster.stop()
        databases.drop()


def report(path: Path, limit: int) -> None:
    stats = pstats.Stats(str(path))
    total = sum(row[2] for row in stats.stats.values())  # type: ignore[attr-defined]
    print(f"\n### {path.name}: {total:.2f} s own time on the main thread")
    stats.sort_stats("tottime").print_stats(limit)
    stats.sort_stats("cumulative").print_stats(limit)


async def _load(rasa_url: str, token: str, args: argparse.Namespace, account: Account,
                pids: dict[str, int]) -> None:
    rest = functools.partial(rest_send, url=f"{rasa_url}/webhooks/rest/webhook", token=token)
    wechat = functools.partial(
        wechat_send, mode="safe",
        wechat=WeChatServer(f"{rasa_url}/webhooks/wechat/webhook", account.token,
                            account.appid, account.aes_key))
    send = wechat if args.path == "wechat" else rest
    await open_loop("warmup", send, MESSAGES, rate=5, seconds=4, conversations=5)
    _signal(pids, signal.SIGUSR1)
    result = await open_loop(f"profile-{int(time.time())}", send, MESSAGES, rate=args.rate,
                             seconds=args.seconds, conversations=args.conversations)
    _signal(pids, signal.SIGUSR2)
    print(f"{args.path}: {result.ok}/{result.sent} answered, p50 {result.percentile(50):.0f}"
          f" ms, p95 {result.percentile(95):.0f} ms, {result.throughput:.1f} msg/s "
          "(under cProfile: slower than unprofiled)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--path", choices=["rest", "wechat"], default="rest")
    parser.add_argument("--profile", choices=["default", "production"], default="default")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "profile")
    parser.add_argument("--limit", type=int, default=30)
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args()
    from bot.model import ensure_model

    model = (args.model or ensure_model()).resolve()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.prof"):
        old.unlink()
    account = Account()
    recording = RecordingServer().start()
    env = {**account.env(recording.base_url, 4.0), "RASA_JWT_SECRET": "bench-profile-secret",
           "PYTHONPATH": str(ROOT / "bench" / "profiling"),
           "CITIZENBOT_PROFILE_DIR": str(out)}
    var_dir = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    try:
        with _servers(args.profile, var_dir, model, env) as (rasa_url, token):
            asyncio.run(_load(rasa_url, token, args, account, _pids(var_dir)))
            time.sleep(2)  # the handlers write the files
    finally:
        recording.stop()
    for path in sorted(out.glob("*.prof")):
        report(path, args.limit)


if __name__ == "__main__":
    main()
