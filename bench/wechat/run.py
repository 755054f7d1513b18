"""WeChat channel overhead: signed (and AES-encrypted) XML round trips vs Rasa's REST channel.

Same server, same messages, same run: one ``citizenbot run`` carries both
channels, so the ratio is the cost of the WeChat path alone (signature check,
decryption, XML parsing, dedupe, reply rendering and encryption).

Usage: ``python -m bench.wechat.run [--rounds 40] [--rate 10] [--seconds 20] [--mode safe]``
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import tempfile
import time
from pathlib import Path

import aiohttp
from rich.console import Console
from rich.table import Table

from bench.load import HEADER, Result, Send, open_loop, rest_send, session
from bot.model import ensure_model
from tests.channels.conftest import Account
from tests.channels.wechat_sim import Mode, WeChatServer, message_xml
from tests.recording_server import RecordingServer
from tests.stack import Stack

#: a citizen's typical turns (the same list as bench.rest)
MESSAGES = [
    "你好",
    "社保卡丢了怎么补办",
    "我要投诉小区楼下烧烤店半夜还在营业",
    "我的工单处理得怎么样了",
    "谢谢",
]


async def wechat_send(client: aiohttp.ClientSession, sender: str, text: str, *,
                      wechat: WeChatServer, mode: Mode) -> bool:
    # a fresh MsgId each time: every message is a new one, as from a citizen
    query, body = wechat.envelope(message_xml("text", f"o{sender}", content=text), mode)
    async with client.post(wechat.webhook_url, params=query, data=body,
                           headers={"Content-Type": "text/xml"}) as response:
        reply = wechat.open_raw_reply(response.status, await response.text(), query)
    return reply.status == 200 and bool(reply.text)


async def sequential(sends: dict[str, Send], rounds: int) -> list[Result]:
    """One message at a time, the channels interleaved message by message, so a
    change in machine load (2 shared cores) hits both the same."""
    latencies: dict[str, list[float]] = {label: [] for label in sends}
    ok = dict.fromkeys(sends, 0)
    start = time.perf_counter()
    async with session() as client:
        for index in range(rounds):
            text = MESSAGES[index % len(MESSAGES)]
            for label, send in sends.items():
                begin = time.perf_counter()
                if await send(client, f"{label}-seq-{index % 8}", text):
                    ok[label] += 1
                    latencies[label].append((time.perf_counter() - begin) * 1000)
    elapsed = time.perf_counter() - start
    return [Result(f"{label} (sequential)", 0, rounds, ok[label], elapsed, latencies[label])
            for label in sends]


async def measure(stack: Stack, wechat: WeChatServer, mode: Mode, rounds: int, rate: float,
                  seconds: float, conversations: int) -> list[Result]:
    rest = functools.partial(rest_send, url=f"{stack.rasa_url}/webhooks/rest/webhook")
    wx = functools.partial(wechat_send, wechat=wechat, mode=mode)
    # warm-up, so neither side pays for first-call costs
    await sequential({"warmup-rest": rest, "warmup-wechat": wx}, 5)
    results = await sequential({"rest": rest, f"wechat-{mode}": wx}, rounds)
    for label, send in (("rest", rest), (f"wechat-{mode}", wx)):
        results.append(await open_loop(label, send, MESSAGES, rate=rate, seconds=seconds,
                                       conversations=conversations))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--conversations", type=int, default=20)
    parser.add_argument("--mode", choices=["plain", "compatible", "safe"], default="safe")
    parser.add_argument("--model", type=Path, default=None, help="default: the current model")
    args = parser.parse_args()
    model = (args.model or ensure_model()).resolve()

    account = Account()
    recording = RecordingServer().start()
    env = account.env(recording.base_url, 4.0)
    if args.mode == "plain":
        env["WECHAT_AES_KEY"] = ""  # a keyed account accepts only encrypted messages
    stack = Stack(var_dir=Path(tempfile.mkdtemp(prefix="bench-wechat-")), model=model,
                  extra_env={**env, "LOG_LEVEL": "WARNING"})
    stack.start()
    try:
        wechat = WeChatServer(f"{stack.rasa_url}/webhooks/wechat/webhook", account.token,
                              account.appid, account.aes_key)
        results = asyncio.run(measure(stack, wechat, args.mode, args.rounds, args.rate,
                                      args.seconds, args.conversations))
    finally:
        stack.stop()
        recording.stop()

    table = Table(title=f"WeChat ({args.mode}) vs REST, same server")
    for column in HEADER:
        table.add_column(column)
    for result in results:
        table.add_row(*result.row())
    console = Console()
    console.print(table)
    pairs = (("sequential", results[0:2]), (f"{args.rate:.0f} msg/s", results[2:4]))
    for kind, (rest, wx) in pairs:
        console.print(
            f"{kind}: WeChat/REST p50 {wx.percentile(50) / rest.percentile(50):.2f}x, "
            f"p95 {wx.percentile(95) / rest.percentile(95):.2f}x (target ≤ 1.10x)")


if __name__ == "__main__":
    main()
