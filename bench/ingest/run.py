"""Hotline ingest throughput: calls per second, against the bare NLU parse rate.

Generates N calls (default 5,000, about 10 turns each, half of them the citizen's)
into a JSON Lines file, loads the model once, then measures in the same process:

* **bare parse**: ``Agent.parse_message`` on exactly the citizen texts of the file,
  one after the other: the floor cost of understanding those calls;
* **ingest**: ``ingest_file`` of the file into a fresh SQLite ticket store (read,
  normalize, parse, decide, summarise, create tickets, record contacts);
* **re-ingest**: the same file again (every call known: nothing parsed or written).

The calls are split into ``--rounds`` parts; bare parse and ingest alternate part
by part (order swapped every round), so on a shared machine both see the same load.

The target is ingest ≥ 0.8× the bare parse rate. Numbers, not assertions (the
machine is shared). Run with
``.venv/bin/python bench/ingest/run.py [--calls 5000] [--model PATH]``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cryptography.fernet import Fernet

from bot.settings import load_settings
from bot.tickets.store import TicketStore
from connectors.hotline.ingest import ingest_file
from connectors.hotline.nlu import load_nlu

PLACES = ["幸福小区", "人民路", "解放大道", "实验小学", "中山公园", "东湖花园", "火车站", "滨江路"]
CASES = [
    "我要投诉{place}门口的烧烤摊，每天晚上十点以后还在营业，油烟特别大。",
    "我要举报，{place}有家黑作坊无证经营，还往河里偷排污水。",
    "我需要帮助，家里老人一个人住在{place}，水管爆了没人修。",
    "我有个建议，建议在{place}增设一个公交站。",
    "{place}的路灯坏了好几天了，晚上特别黑，老人出门不安全。",
    "我要投诉{place}的工地半夜还在施工，吵得没法睡觉。",
]
DETAILS = [
    "已经好几个月了，一直没人管。",
    "我之前也反映过，还是没有解决。",
    "具体位置就在{place}东门旁边。",
    "我的电话是1391234{n:04d}，麻烦尽快处理。",
    "希望有关部门能尽快过来看看。",
]
INQUIRIES = [
    "请问居住证怎么办理？",
    "社保卡丢了怎么补办？",
    "办护照需要带什么材料？",
    "公积金怎么提取？",
    "{place}附近的政务服务中心几点下班？",
    "孩子上小学需要准备哪些材料？",
]
FOLLOW = ["那需要带户口本吗？", "网上能办吗？", "大概要多长时间？", "在哪个窗口办？"]
CLOSING = ["好的，谢谢", "行，我知道了", "好的好的，麻烦你了"]
#: what the agent says, turn by turn, answering the citizen's turn before it: a case call
#: ends with a promise to pass it on, an inquiry call with answers to the questions
AGENT_CASE = [
    "您好，12345热线，请讲。",
    "嗯，您说。",
    "请问具体是什么位置？",
    "还有其他需要补充的吗？",
    "好的，我们会转交相关部门处理，请保持电话畅通。",
]
AGENT_INQUIRY = [
    "您好，12345热线，请讲。",
    "您请讲。",
    "您可以带身份证到政务服务中心办理。",
    "不需要，网上也可以办。",
    "一般五个工作日左右。",
]
AGENT_CLOSING = "感谢您的来电，再见。"


def generate(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """n calls, 11 turns each; roughly 40% cases, 60% inquiries (12345 practice)."""
    rng = random.Random(seed)
    calls = []
    for i in range(n):
        place = rng.choice(PLACES)
        case = rng.random() < 0.4
        if case:
            citizen = [
                "你好",
                rng.choice(CASES).format(place=place),
                rng.choice(DETAILS).format(place=place, n=i % 10_000),
                rng.choice(DETAILS).format(place=place, n=(i * 7) % 10_000),
                rng.choice(CLOSING),
            ]
        else:
            citizen = [
                "你好",
                rng.choice(INQUIRIES).format(place=place),
                rng.choice(FOLLOW),
                rng.choice(FOLLOW),
                rng.choice(CLOSING),
            ]
        turns = []
        for agent, text in zip(AGENT_CASE if case else AGENT_INQUIRY, citizen, strict=True):
            turns.append({"speaker": "agent", "text": agent})
            turns.append({"speaker": "citizen", "text": text})
        turns.append({"speaker": "agent", "text": AGENT_CLOSING})
        calls.append(
            {
                "call_id": f"BENCH-{i:06d}",
                "started_at": f"2026-11-27T{8 + i % 10:02d}:{i % 60:02d}:00+08:00",
                "caller": f"1380000{i % 10_000:04d}",
                "turns": turns,
            }
        )
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--model", type=Path, default=None, help="default: the current model")
    parser.add_argument("--rounds", type=int, default=5, help="parse/ingest alternations")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    calls = generate(args.calls)
    rounds = max(1, min(args.rounds, len(calls)))
    parts = [calls[i::rounds] for i in range(rounds)]
    texts_of = [
        [t["text"] for c in part for t in c["turns"] if t["speaker"] == "citizen"]
        for part in parts
    ]
    texts = [t for part in texts_of for t in part]
    parse_seconds = ingest_seconds = 0.0
    tickets = contacts = errors = 0
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        directory = Path(tmp)
        files = []
        for i, part in enumerate(parts):
            path = directory / f"calls-{i}.jsonl"
            lines = (json.dumps(c, ensure_ascii=False) + "\n" for c in part)
            path.write_text("".join(lines), encoding="utf-8")
            files.append(path)

        started = time.perf_counter()
        nlu = load_nlu(args.model)
        load_seconds = time.perf_counter() - started
        nlu.parse(texts[:50])  # warm-up: first calls build TensorFlow functions

        env = {
            "VAR_DIR": str(directory / "var"),
            "DATABASE_URL": f"sqlite:///{directory / 'var' / 'tickets.db'}",
            "PII_KEY": Fernet.generate_key().decode(),
        }
        store = TicketStore(env["DATABASE_URL"], settings=load_settings(env))
        # The machine is shared: bare parse and ingest alternate in rounds (and swap
        # order every round), so both see the same load and the ratio stays fair.
        for i, (path, part_texts) in enumerate(zip(files, texts_of, strict=True)):
            for phase in ("parse", "ingest") if i % 2 == 0 else ("ingest", "parse"):
                started = time.perf_counter()
                if phase == "parse":
                    nlu.parse(part_texts)
                    parse_seconds += time.perf_counter() - started
                else:
                    summary = ingest_file(path, store=store, nlu=nlu)
                    ingest_seconds += time.perf_counter() - started
                    tickets += summary.tickets_created
                    contacts += summary.resolved_contacts
                    errors += len(summary.errors)
        started = time.perf_counter()
        again = [ingest_file(path, store=store, nlu=nlu) for path in files]
        reingest_seconds = time.perf_counter() - started
        store.dispose()

    parse_rate = len(calls) / parse_seconds
    figures = {
        "calls": len(calls),
        "turns": sum(len(c["turns"]) for c in calls),
        "citizen_texts": len(texts),
        "model_load_s": round(load_seconds, 1),
        "bare_parse_s": round(parse_seconds, 2),
        "bare_parse_msgs_per_s": round(len(texts) / parse_seconds, 1),
        "bare_parse_calls_per_s": round(parse_rate, 2),
        "ingest_s": round(ingest_seconds, 2),
        "ingest_calls_per_s": round(len(calls) / ingest_seconds, 2),
        "ratio_ingest_to_bare_parse": round(parse_seconds / ingest_seconds, 3),
        "tickets_created": tickets,
        "resolved_contacts": contacts,
        "errors": errors,
        "reingest_s": round(reingest_seconds, 2),
        "reingest_calls_per_s": round(len(calls) / reingest_seconds, 1),
        "reingest_duplicates": sum(a.duplicates_skipped for a in again),
        "rounds": rounds,
    }
    if args.json:
        print(json.dumps(figures, ensure_ascii=False, indent=2))
        return
    width = max(map(len, figures))
    for name, value in figures.items():
        print(f"  {name:<{width}}  {value}")
    print("  (target: ratio_ingest_to_bare_parse >= 0.8)")


if __name__ == "__main__":
    main()
