"""NLU parse latency on one core: the whole pipeline of ``config.yml``, per message.

Parses real phrasings (the held-out NLU messages, the e2e story texts and
off-domain requests of the shared set) with the served model, one message at a
time as the server does (with its Rasa hooks and its frozen start-up objects),
pinned to one CPU with one BLAS thread, and reports p50/p95/max of wall time and
of CPU time per message, and the minimal bot's (jieba + DIET) parse of the same
messages in the same run. The budget is p95 ≤ 5 ms (issue 21). Numbers, not
assertions: ``make bench`` prints them.

    .venv/bin/python -m bench.nlu.run [--model models/x.tar.gz] [--repeat 3]
"""

from __future__ import annotations

import os

# one core, one BLAS thread: set before numpy is imported anywhere
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import asyncio
import json
import re
import statistics
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BUDGET_MS = 5.0
_MARKUP = re.compile(r"\[([^\]]*)\]\([^)]*\)")


def messages() -> list[str]:
    """Citizen texts that are not training examples."""
    texts: list[str] = []
    heldout = yaml.safe_load((ROOT / "tests" / "nlu" / "nlu_heldout.yml").read_text("utf-8"))
    texts += [text for text, _ in heldout]
    for path in sorted((ROOT / "tests" / "conversations").glob("test_*.yml")):
        for story in yaml.safe_load(path.read_text("utf-8")).get("stories", []):
            for step in story.get("steps", []):
                if isinstance(step, dict) and isinstance(step.get("user"), str):
                    texts.append(_MARKUP.sub(r"\1", step["user"]).strip())
    from nlu import offdomain

    if offdomain.SHARED_FILE.exists():
        chosen = {r.key for r in offdomain.select(offdomain.read_requests())}
        texts += [r.text for r in offdomain.read_requests() if r.key not in chosen][:300]
    return [t for t in texts if t]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _measure(agent, texts: list[str], repeat: int) -> tuple[list[float], list[float]]:
    for text in texts[:30]:  # warm-up: first calls load lazily built tables
        await agent.parse_message(text)
    wall, cpu = [], []
    for _ in range(repeat):
        for text in texts:
            w0, c0 = time.perf_counter(), time.thread_time()
            await agent.parse_message(text)
            cpu.append((time.thread_time() - c0) * 1000)
            wall.append((time.perf_counter() - w0) * 1000)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="default: the current model")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-baseline", dest="baseline", action="store_false",
                        help="skip the minimal bot's parse of the same messages")
    args = parser.parse_args()
    import logging

    import structlog

    # as `rasa run` at its default level: the per-message debug line is not written
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    logging.getLogger().setLevel(logging.WARNING)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    from rasa.core.agent import Agent

    from bot.model import ensure_model
    from connectors.rasa_hooks import freeze_loaded_objects, install_hooks

    # as `citizenbot run` serves it: the same hooks (the graph run in dependency order,
    # not through dask) and the loaded model frozen out of garbage collection
    install_hooks()
    model = args.model or ensure_model()
    agent = Agent.load(str(model))
    asyncio.run(freeze_loaded_objects())
    texts = messages()
    wall, cpu = asyncio.run(_measure(agent, texts, args.repeat))
    baseline = None
    if args.baseline:
        from bench import minimal_bot

        floor = Agent.load(str(minimal_bot.train()))
        asyncio.run(freeze_loaded_objects())
        _, base_cpu = asyncio.run(_measure(floor, texts, args.repeat))
        baseline = {"model": "minimal bot (jieba + DIET)",
                    "cpu_ms": {"p50": statistics.median(base_cpu),
                               "p95": _percentile(base_cpu, 0.95)}}
    result = {
        "model": Path(model).name, "messages": len(texts), "parses": len(wall),
        "wall_ms": {"p50": statistics.median(wall), "p95": _percentile(wall, 0.95),
                    "max": max(wall)},
        "cpu_ms": {"p50": statistics.median(cpu), "p95": _percentile(cpu, 0.95),
                   "max": max(cpu)},
        "budget_p95_ms": BUDGET_MS, "load_avg": os.getloadavg()[0],
        "baseline": baseline,
    }
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"NLU parse, one core, {result['parses']} parses of {len(texts)} messages "
          f"({result['model']}, load {result['load_avg']:.1f})")
    for kind in ("wall_ms", "cpu_ms"):
        r = result[kind]
        print(f"  {kind[:-3]:4} p50 {r['p50']:.2f} ms  p95 {r['p95']:.2f} ms  max {r['max']:.1f} ms"
              f"  (budget p95 {BUDGET_MS} ms: {'ok' if r['p95'] <= BUDGET_MS else 'OVER'})")
    if baseline:
        b = baseline["cpu_ms"]
        print(f"  same messages, same run, {baseline['model']}: cpu p50 {b['p50']:.2f} ms"
              f"  p95 {b['p95']:.2f} ms  -> citizenbot p95 = "
              f"{result['cpu_ms']['p95'] / b['p95']:.2f}x the minimal bot's")


if __name__ == "__main__":
    main()
