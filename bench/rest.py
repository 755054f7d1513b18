"""REST chat latency: citizenbot vs the minimal Rasa bot, same messages, same offered rate.

Usage: ``python -m bench.rest [--rate 20] [--seconds 30] [--conversations 40]``
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench import minimal_bot
from bench.load import HEADER, Result, open_loop, rest_send
from bot.model import ensure_model
from tests.stack import Stack, free_port

#: a citizen's typical turns: greeting, a question, a complaint start, a status query
MESSAGES = [
    "你好",
    "社保卡丢了怎么补办",
    "我要投诉小区楼下烧烤店半夜还在营业",
    "我的工单处理得怎么样了",
    "谢谢",
]


async def measure(rate: float, seconds: float, conversations: int, model: Path) -> list[Result]:
    results = []
    port = free_port()
    minimal = minimal_bot.start(port)
    try:
        send = functools.partial(rest_send, url=f"http://127.0.0.1:{port}/webhooks/rest/webhook")
        results.append(
            await open_loop(
                "minimal-bot",
                send,
                MESSAGES,
                rate=rate,
                seconds=seconds,
                conversations=conversations,
            )
        )
    finally:
        minimal.terminate()
        minimal.wait()
    stack = Stack(var_dir=Path(tempfile.mkdtemp(prefix="bench-var-")), model=model).start()
    try:
        send = functools.partial(rest_send, url=f"{stack.rasa_url}/webhooks/rest/webhook")
        results.append(
            await open_loop(
                "citizenbot",
                send,
                MESSAGES,
                rate=rate,
                seconds=seconds,
                conversations=conversations,
            )
        )
    finally:
        stack.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--conversations", type=int, default=40)
    parser.add_argument("--model", type=Path, default=None, help="default: the current model")
    args = parser.parse_args()
    model = (args.model or ensure_model()).resolve()
    results = asyncio.run(measure(args.rate, args.seconds, args.conversations, model))
    table = Table(title=f"REST chat, open loop at {args.rate:.0f} msg/s")
    for column in HEADER:
        table.add_column(column)
    for result in results:
        table.add_row(*result.row())
    console = Console()
    console.print(table)
    base, ours = results
    console.print(
        f"ratio citizenbot/minimal-bot: p95 {ours.percentile(95) / base.percentile(95):.2f}x, "
        f"throughput {ours.throughput / base.throughput:.2f}x"
    )


if __name__ == "__main__":
    main()
