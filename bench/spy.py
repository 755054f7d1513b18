"""Where a message's time goes on the production profile: py-spy samples of the servers.

``bench.profile`` (cProfile, main thread only) cannot see the tracker store's
threads and inflates pure-Python time; the production profile's costs are partly
in threads and in other processes. This starts ``citizenbot run --profile
production --rasa-servers 2 --action-servers 2`` (PostgreSQL + Redis on
127.0.0.1), offers open-loop load over REST and WeChat, samples Rasa server 1 and
action server 1 with py-spy (all threads, only samples holding the GIL: Python
work, not waiting) and prints each stage's share of the Rasa server's samples.

py-spy is not a project dependency: ``pip download py-spy`` and unpack the wheel,
then point ``PY_SPY`` at its ``py-spy`` binary (or put it on PATH).

Usage: ``python -m bench.spy [--rate 20] [--seconds 20] [--out reports/spy]``
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.chat import Mixed, _secrets, _wechat
from bench.load import open_loop, rest_send, sticky
from bench.wechat.run import MESSAGES
from bot.settings import ROOT
from tests.channels.conftest import Account
from tests.recording_server import RecordingServer

#: (stage, a frame that marks it) — shares of the Rasa server's GIL-holding samples
STAGES = [
    ("NLU parse", "parse_message (rasa/core/processor.py"),
    ("policy predictions", "_predict_next_with_tracker (rasa/core/processor.py"),
    ("  of which featurising the session", "_prediction_states (rasa/core/policies/policy.py"),
    ("actions (utterances, form, action calls)", "_run_action (rasa/core/processor.py"),
    ("  of which action-server HTTP calls", "request (rasa/utils/endpoints.py"),
    ("  of which the tracker copy before an action", "copy (rasa/shared/core/trackers.py"),
    ("deep copies", "deepcopy (copy.py"),
    ("lock store", "lock_store.py"),
    ("tracker store (loop and its threads)", "tracker_store.py"),
    ("WeChat channel, besides the turn", "connectors/wechat/channel.py"),
    ("WeChat dedupe / nonce / choices in Redis", "connectors/state.py"),
]


#: a frame of every message's turn (the WeChat channel's own share leaves it out)
_TURN = "handle_message (rasa/core/agent.py"


def shares(path: Path) -> list[tuple[str, float]]:
    """Each stage's share of the samples in a py-spy ``raw`` (collapsed stacks) file."""
    total = 0
    found: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        total += int(count)
        for stage, frame in STAGES:
            if frame in stack and not (stage.startswith("WeChat channel") and _TURN in stack):
                found[stage] += int(count)
    return [(stage, found[stage] / total if total else 0.0) for stage, _ in STAGES]


def main() -> None:
    from bot.model import ensure_model
    from tests.production.cluster import REST_TOKEN, Cluster, Databases

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "spy")
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args()
    spy = os.environ.get("PY_SPY") or shutil.which("py-spy")
    if not spy:
        raise SystemExit("py-spy not found: set PY_SPY (see the module docstring)")
    args.out.mkdir(parents=True, exist_ok=True)
    model = (args.model or ensure_model()).resolve()
    account = Account()
    recording = RecordingServer().start()
    databases = Databases(prefix="cbspy").create()
    cluster = Cluster(Path(tempfile.mkdtemp(prefix="bench-spy-")), model, databases,
                      extra_env={**account.env(recording.base_url, 4.0), **_secrets()})
    try:
        cluster.start()
        mixed = Mixed({
            "rest": sticky([functools.partial(rest_send, url=f"{u}/webhooks/rest/webhook",
                                              token=REST_TOKEN) for u in cluster.rasa_urls]),
            "wechat": sticky([_wechat(u, account) for u in cluster.rasa_urls])})
        pids = {p["name"]: int(p["pid"]) for p in cluster.processes() if p.get("pid")}
        asyncio.run(open_loop("warm", mixed, MESSAGES, rate=5, seconds=4, conversations=6))
        samplers = {}
        for name in ("Rasa server 1", "action server 1"):
            out = args.out / f"{name.replace(' ', '-')}.txt"
            samplers[name] = (out, subprocess.Popen(
                [spy, "record", "-p", str(pids[name]), "-r", "200", "-f", "raw", "--gil",
                 "--nonblocking", "-d", str(int(args.seconds) + 1), "-o", str(out)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(0.5)
        mixed.reset()
        result = asyncio.run(open_loop(f"spy-{int(time.time())}", mixed, MESSAGES,
                                       rate=args.rate, seconds=args.seconds,
                                       conversations=50))
        for _, process in samplers.values():
            process.wait()
    finally:
        cluster.stop()
        databases.drop()
        recording.stop()
    print(f"{result.ok}/{result.sent} answered, p50 {result.percentile(50):.0f} ms, "
          f"p95 {result.percentile(95):.0f} ms; load average {os.getloadavg()[0]:.2f}")
    out, _ = samplers["Rasa server 1"]
    print(f"\nRasa server 1, share of its samples holding the GIL ({out}):")
    for stage, share in shares(out):
        print(f"  {stage:<52} {100 * share:5.1f} %")


if __name__ == "__main__":
    main()
