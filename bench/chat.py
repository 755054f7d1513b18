"""Chat under load, in one run: the minimal Rasa bot vs citizenbot, REST and WeChat.

The DESIGN.md targets are ratios measured in one run on this machine, so this
benchmark starts, one after the other:

* the minimal bot of ``../shared/bench/minimal-bot`` (the floor: REST only);
* two minimal bots side by side, conversations sticking to one (``minimal-2x``):
  not a system under test but the yardstick of the 2x target, what the floor
  itself carries on both cores with the load generator on the same machine;
* ``citizenbot run`` on the default profile (SQLite, one Rasa server);
* ``citizenbot run --profile production --rasa-servers 2 --action-servers 2`` on
  PostgreSQL + Redis, when both answer on 127.0.0.1 (the profile the README
  recommends for one machine; a conversation sticks to one server by its
  sender, as nginx's ``hash`` does);

and offers each open-loop Poisson arrivals (:func:`bench.load.open_loop`) over 50
conversations cycling through a greeting, an inquiry, a complaint, a status
question and thanks, at each ``--rates`` value for ``--seconds``; with two channels
the conversations alternate between REST and WeChat within each window, so both
are measured under the same load. Every window uses new conversations, and every
WeChat message a new MsgId, so no answer comes from dedupe. WeChat messages are
signed, AES-encrypted (safe mode) XML.
Servers log as configured by default (INFO; JSON lines in production).

Printed: a row per window (and per channel) with the load average and the CPU each
process group used per answered message (:mod:`bench.cpu`), the saturation (most
answered/s over the windows, both channels together), the memory of each Rasa server
after the load, and the ratios with their targets: saturation ≥ 2× the minimal bot's
(recommended profile) and ≥ 1× (default profile); p95 ≤ 150 ms at 20 msg/s;
WeChat p95 ≤ 1.10× REST.

Usage: ``python -m bench.chat [--rates 20,40,80,120] [--seconds 15] [--conversations 50]
[--profiles default,production,minimal-2x] [--model PATH]``
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from rich.console import Console
from rich.table import Table

from bench import cpu, minimal_bot
from bench.load import Result, Send, open_loop, percentile, rest_send, sticky
from bench.wechat.run import MESSAGES, wechat_send
from tests.channels.conftest import Account
from tests.channels.wechat_sim import WeChatServer
from tests.recording_server import RecordingServer
from tests.stack import Stack, free_port

#: results key of a whole window (every path)
ALL = "all"
#: p95 target at 20 msg/s (ms) and the other DESIGN.md ratios
P95_TARGET_MS = 150.0
WECHAT_RATIO_TARGET = 1.10


@dataclass
class Target:
    """One system under test: how to send to it, and its Rasa server processes."""

    name: str
    sends: dict[str, Send]
    rasa_pids: list[int] = field(default_factory=list)
    results: dict[tuple[str, float], Result] = field(default_factory=dict)
    memory_mb: list[float] = field(default_factory=list)
    #: pid → name of this target's server processes (CPU accounting per window)
    named: dict[int, str] = field(default_factory=dict)
    #: per window (rate): CPU seconds each process group used
    cpu: dict[float, dict[str, float]] = field(default_factory=dict)
    #: a yardstick, not a system under test: no target applies to it
    reference: bool = False

    def saturation(self) -> float:
        """Most messages answered per second over the windows (all paths together)."""
        return max((r.throughput for (p, _), r in self.results.items() if p == ALL),
                   default=0.0)


def rss_mb(pid: int) -> float:
    """Resident memory of a process (Linux), MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


class Mixed:
    """Conversations alternate between the paths (conversation ``i`` uses path ``i mod
    n``): both channels share every window, so their latencies are compared under
    the same load, and the window's throughput is the server's for the mix."""

    def __init__(self, sends: dict[str, Send]) -> None:
        self.sends = sends
        self.paths = list(sends)
        self.reset()

    def reset(self) -> None:
        self.latencies: dict[str, list[float]] = {path: [] for path in self.paths}
        self.attempts = dict.fromkeys(self.paths, 0)

    async def __call__(self, client: aiohttp.ClientSession, sender: str, text: str) -> bool:
        path = self.paths[int(sender.rsplit("-", 1)[1]) % len(self.paths)]
        self.attempts[path] += 1
        begin = time.perf_counter()
        ok = await self.sends[path](client, sender, text)
        if ok:
            self.latencies[path].append((time.perf_counter() - begin) * 1000)
        return ok


async def measure(target: Target, rates: list[float], seconds: float,
                  conversations: int) -> None:
    run = f"{int(time.time()) % 100000}"
    mixed = Mixed(target.sends)
    # warm-up: lazily built parts of every process, keep-alive connections
    await open_loop(f"warm-{run}", mixed, MESSAGES, rate=5, seconds=4, conversations=6)
    for rate in rates:
        mixed.reset()
        label = f"{target.name}-{rate:.0f}-{run}"
        before = cpu.snapshot()
        result = await open_loop(label, mixed, MESSAGES, rate=rate, seconds=seconds,
                                 conversations=conversations)
        target.cpu[rate] = cpu.per_group(before, cpu.snapshot(), target.named)
        target.results[(ALL, rate)] = result
        print(f"  {target.name} {rate:.0f}/s: {result.ok}/{result.sent} answered, "
              f"p50 {result.percentile(50):.0f} ms, p95 {result.percentile(95):.0f} ms, "
              f"{result.throughput:.1f} msg/s; load average {os.getloadavg()[0]:.2f}",
              flush=True)
        print(f"    {cpu.describe(target.cpu[rate], result.ok, result.seconds)}", flush=True)
        if len(mixed.paths) > 1:
            for path in mixed.paths:
                part = Result(path, rate, mixed.attempts[path], len(mixed.latencies[path]),
                              result.seconds, mixed.latencies[path])
                target.results[(path, rate)] = part
                print(f"    {path}: p50 {part.percentile(50):.0f} ms, "
                      f"p95 {part.percentile(95):.0f} ms", flush=True)
    target.memory_mb = [rss_mb(pid) for pid in target.rasa_pids]


def _rasa_pids(processes: list[dict[str, object]]) -> list[int]:
    return [int(str(p["pid"])) for p in processes
            if str(p["name"]).startswith("Rasa server") and p.get("pid")]


def _named(processes: list[dict[str, object]]) -> dict[int, str]:
    """pid → group name: "Rasa servers", "action servers", "staff console"."""
    named = {}
    for process in processes:
        name = str(process["name"])
        if process.get("pid"):
            named[int(str(process["pid"]))] = (
                "Rasa servers" if name.startswith("Rasa server")
                else "action servers" if name.startswith("action server") else name)
    return named


def run_minimal(args: argparse.Namespace, servers: int = 1) -> Target:
    """The floor; with ``servers=2`` two of it, each conversation sticking to one (as
    nginx hashes the production profile's): what the floor itself carries on both
    cores, the yardstick for the 2x target."""
    ports = [free_port() for _ in range(servers)]
    processes = []
    try:
        for port in ports:
            processes.append(minimal_bot.start(port))
        sends = [functools.partial(rest_send, url=f"http://127.0.0.1:{port}/webhooks/rest/webhook")
                 for port in ports]
        target = Target("minimal" if servers == 1 else f"minimal-{servers}x",
                        {"rest": sends[0] if servers == 1 else sticky(sends)},
                        [process.pid for process in processes],
                        named={process.pid: "Rasa servers" for process in processes},
                        reference=servers > 1)
        asyncio.run(measure(target, args.rates, args.seconds, args.conversations))
    finally:
        for process in processes:
            process.terminate()
            process.wait()
    return target


def _secrets() -> dict[str, str]:
    """A JWT secret for Rasa that argparse takes: a generated one may start with '-'
    (``secrets.token_urlsafe``), which ``rasa run --jwt-secret`` refuses as an option."""
    import secrets

    return {"RASA_JWT_SECRET": "bench-" + secrets.token_hex(16)}


def _wechat(url: str, account: Account) -> Send:
    server = WeChatServer(f"{url}/webhooks/wechat/webhook", account.token, account.appid,
                          account.aes_key)
    return functools.partial(wechat_send, wechat=server, mode="safe")


def run_default(args: argparse.Namespace, model: Path, recording: RecordingServer) -> Target:
    account = Account()
    stack = Stack(var_dir=Path(tempfile.mkdtemp(prefix="bench-chat-")), model=model,
                  extra_env={**account.env(recording.base_url, 4.0), **_secrets()})
    stack.start()
    try:
        processes = _processes(stack.var_dir)
        url = f"{stack.rasa_url}"
        target = Target("default", {
            "rest": functools.partial(rest_send, url=f"{url}/webhooks/rest/webhook"),
            "wechat": _wechat(url, account)}, _rasa_pids(processes), named=_named(processes))
        asyncio.run(measure(target, args.rates, args.seconds, args.conversations))
    finally:
        stack.stop()
    return target


def _processes(var_dir: Path) -> list[dict[str, object]]:
    import json

    path = var_dir / "run" / "processes.json"
    deadline = time.monotonic() + 120
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    return list(json.loads(path.read_text())) if path.exists() else []


def run_production(args: argparse.Namespace, model: Path,
                   recording: RecordingServer) -> Target | None:
    from tests.production.cluster import (
        REST_TOKEN,
        Cluster,
        Databases,
        pg_available,
        redis_available,
    )

    if not (pg_available() and redis_available()):
        print("  production profile skipped: PostgreSQL or Redis not running on 127.0.0.1")
        return None
    account = Account()
    databases = Databases(prefix="cbchat").create()
    cluster = Cluster(Path(tempfile.mkdtemp(prefix="bench-chat-prod-")), model, databases,
                      rasa_servers=args.servers, action_servers=args.servers,
                      extra_env={**account.env(recording.base_url, 4.0), **_secrets()})
    try:
        cluster.start()
        rest = sticky([functools.partial(rest_send, url=f"{url}/webhooks/rest/webhook",
                                         token=REST_TOKEN) for url in cluster.rasa_urls])
        wechat = sticky([_wechat(url, account) for url in cluster.rasa_urls])
        target = Target(f"production-{args.servers}x", {"rest": rest, "wechat": wechat},
                        _rasa_pids(cluster.processes()), named=_named(cluster.processes()))
        asyncio.run(measure(target, args.rates, args.seconds, args.conversations))
    finally:
        cluster.stop()
        databases.drop()
    return target


def _ratio(value: float, base: float) -> float:
    return value / base if base else float("nan")


def _ratio_interval(top: list[float], bottom: list[float], rounds: int = 2000,
                    seed: int = 7) -> tuple[float, float]:
    """A bootstrap 95 % interval of p95(top) / p95(bottom).

    About 150 messages a channel decide each p95 at 20 msg/s; the interval shows
    how far the ratio moves on resampling alone, so a ratio near its target is
    read as what it is, not as a change in the code."""
    import random

    if not top or not bottom:
        return float("nan"), float("nan")
    rng = random.Random(seed)
    ratios = sorted(_ratio(percentile(rng.choices(top, k=len(top)), 95),
                           percentile(rng.choices(bottom, k=len(bottom)), 95))
                    for _ in range(rounds))
    return ratios[int(0.025 * rounds)], ratios[int(0.975 * rounds) - 1]


def report(targets: list[Target], args: argparse.Namespace, console: Console) -> None:
    table = Table(title=f"open loop, {args.conversations} conversations, {args.seconds:.0f} s "
                        f"per window (load average before: {args.load_before})")
    for column in ("target", "path", "offered/s", "ok/sent", "p50 ms", "p95 ms", "p99 ms",
                   "msg/s"):
        table.add_column(column)
    for target in targets:
        for (path, _rate), result in target.results.items():
            table.add_row(target.name, path if path != ALL else "all" if len(target.sends) > 1
                          else next(iter(target.sends)), *result.row()[1:])
    console.print(table)
    for target in targets:
        memory = ", ".join(f"{mb:.0f} MB" for mb in target.memory_mb)
        console.print(f"{target.name}: saturation {target.saturation():.1f} msg/s "
                      f"({' + '.join(target.sends)}); Rasa server memory (RSS) {memory}")
    floor = targets[0].saturation()
    at20 = 20.0 if 20.0 in args.rates else args.rates[0]
    checks: list[tuple[str, float, float, Callable[[float, float], bool]]] = []
    for target in targets[1:]:
        if target.reference:
            checks.append((f"{target.name} saturation / minimal bot's (reference: the floor "
                           "on both cores)", _ratio(target.saturation(), floor), 2.0,
                           float.__ge__))
            continue
        need = 2.0 if target.name.startswith("production") else 1.0
        checks.append((f"{target.name} saturation / minimal bot's",
                       _ratio(target.saturation(), floor), need, float.__ge__))
        for path in target.sends:
            p95 = target.results[(path, at20)].percentile(95)
            checks.append((f"{target.name} {path} p95 at {at20:.0f}/s / {P95_TARGET_MS:.0f} ms",
                           p95 / P95_TARGET_MS, 1.0, float.__le__))
        if "wechat" in target.sends:
            wechat, rest = target.results[("wechat", at20)], target.results[("rest", at20)]
            low, high = _ratio_interval(wechat.latencies_ms, rest.latencies_ms)
            checks.append((f"{target.name} WeChat p95 / REST p95 at {at20:.0f}/s "
                           f"[95 % interval {low:.2f}-{high:.2f}]",
                           _ratio(wechat.percentile(95), rest.percentile(95)),
                           WECHAT_RATIO_TARGET, float.__le__))
    for label, value, bound, ok in checks:
        sign = "≥" if ok is float.__ge__ else "≤"
        mark = "met" if ok(float(value), bound) else "NOT MET"
        console.print(f"ratio {label}: {value:.2f} (target {sign} {bound:.2f}) {mark}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rates", default="20,40,80,120")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--profiles", default="default,production,minimal-2x",
                        help="minimal-2x: two minimal bots, the 2x target's yardstick")
    parser.add_argument("--servers", type=int, default=2,
                        help="Rasa (and action) servers of the production profile")
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args()
    args.rates = [float(r) for r in args.rates.split(",")]
    args.load_before = " ".join(f"{v:.2f}" for v in os.getloadavg())
    from bot.model import ensure_model

    model = (args.model or ensure_model()).resolve()
    console = Console(width=130)
    profiles = [p for p in args.profiles.split(",") if p]
    targets = [run_minimal(args)]
    if "minimal-2x" in profiles:
        targets.append(run_minimal(args, servers=2))
    recording = RecordingServer().start()
    try:
        if "default" in profiles:
            targets.append(run_default(args, model, recording))
        if "production" in profiles:
            production = run_production(args, model, recording)
            if production is not None:
                targets.append(production)
    finally:
        recording.stop()
    console.print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    report(targets, args, console)


if __name__ == "__main__":
    main()
