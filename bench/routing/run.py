"""Routing speed: messages/s and p50/p95 ms per message, router vs linear baseline.

Both models are trained on the seeded 80/20 split's training part and timed in
the same run on the same held-out messages, one message per call (the way the
Rasa component and a chat see them), on one core. Each message's time is taken
twice: wall clock, and the CPU time of the timing thread, which is what the
message costs on one core whatever else the machine runs (on a shared 2-core
machine the wall-clock p95 mostly measures the other processes). The ratio line is
what to compare across machines; absolute figures depend on the machine.

    .venv/bin/python bench/routing/run.py [--messages 500] [--json FILE]
"""

from __future__ import annotations

import os

# One core, before numpy/scipy load their thread pools.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bot.model.router import split_rows  # noqa: E402
from nlu.routing import Router, RouterConfig, baseline_config, read_jsonl, texts_labels  # noqa: E402


def _pin_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def time_per_message(router: Router, texts: list[str], rounds: int = 1) -> dict[str, float]:
    router.predict(texts[:20])  # warm-up: jieba's dictionary, numpy code paths
    samples: list[float] = []
    cpu_samples: list[float] = []
    for _ in range(rounds):
        for text in texts:
            start, cpu_start = time.perf_counter(), time.thread_time()
            router.predict([text])
            cpu_samples.append(time.thread_time() - cpu_start)
            samples.append(time.perf_counter() - start)
    ms = np.array(samples) * 1000
    cpu_ms = np.array(cpu_samples) * 1000
    return {
        "messages": len(samples),
        "messages_per_s": float(len(samples) / (ms.sum() / 1000)),
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "max_ms": float(ms.max()),
        # CPU time of this thread: what the message costs on one core, without the
        # time other processes held that core (wall time on a shared machine has both)
        "cpu_p50_ms": float(np.percentile(cpu_ms, 50)),
        "cpu_p95_ms": float(np.percentile(cpu_ms, 95)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "data/routing/messages.jsonl")
    parser.add_argument("--messages", type=int, default=500, help="held-out messages to time")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    _pin_one_core()

    train, test = split_rows(read_jsonl(args.data), 0.2, args.seed)
    texts, labels = texts_labels(train)
    rng = np.random.default_rng(args.seed)
    held = [r["text"] for r in test]
    timed = [held[i] for i in rng.permutation(len(held))[: args.messages]]

    results: dict[str, Any] = {}
    for name, config in (("router", RouterConfig(seed=args.seed)),
                         ("baseline", baseline_config(seed=args.seed))):
        start = time.perf_counter()
        model = Router(config).fit(texts, labels)
        train_s = time.perf_counter() - start
        results[name] = {"train_s": train_s, **time_per_message(model, timed)}
        r = results[name]
        print(f"{name:9s} train {train_s:6.1f}s  {r['messages_per_s']:7.1f} msg/s  "
              f"p50 {r['p50_ms']:.2f} ms  p95 {r['p95_ms']:.2f} ms  max {r['max_ms']:.1f} ms  "
              f"(CPU p50 {r['cpu_p50_ms']:.2f} ms  p95 {r['cpu_p95_ms']:.2f} ms)",
              flush=True)
    ours, base = results["router"], results["baseline"]
    print(f"ratio router/baseline: p95 {ours['p95_ms'] / base['p95_ms']:.2f}x  "
          f"CPU p95 {ours['cpu_p95_ms'] / base['cpu_p95_ms']:.2f}x  "
          f"throughput {ours['messages_per_s'] / base['messages_per_s']:.2f}x  "
          f"training {ours['train_s'] / base['train_s']:.2f}x")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
