"""Open-loop load: Poisson arrivals at a fixed offered rate, latency of each message.

Closed-loop clients slow down when the server does and hide its queueing; an
open-loop generator keeps offering the rate, so p95 shows what citizens feel.

The generator shares the machine's two cores with the servers it measures, so
its own cost per message is part of what a saturation figure shows. It speaks
HTTP through aiohttp (the C parser Rasa's own client uses), about a third of
httpx's CPU per request; :mod:`bench.cpu` prints what it used in every window.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank ``p``-th percentile (NaN when there is nothing to rank)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


@dataclass(frozen=True)
class Result:
    label: str
    offered: float
    sent: int
    ok: int
    seconds: float
    latencies_ms: list[float]

    @property
    def throughput(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        return percentile(self.latencies_ms, p)

    def row(self) -> list[str]:
        return [
            self.label,
            f"{self.offered:.0f}",
            f"{self.ok}/{self.sent}",
            f"{self.percentile(50):.0f}",
            f"{self.percentile(95):.0f}",
            f"{self.percentile(99):.0f}",
            f"{self.throughput:.1f}",
        ]


HEADER = ["target", "offered/s", "ok/sent", "p50 ms", "p95 ms", "p99 ms", "msg/s"]

Send = Callable[[aiohttp.ClientSession, str, str], Awaitable[bool]]


def sticky(sends: list[Send]) -> Send:
    """A conversation always reaches the same server, as nginx's ``hash`` sends it."""

    async def send(client: aiohttp.ClientSession, sender: str, text: str) -> bool:
        return await sends[zlib.crc32(sender.encode()) % len(sends)](client, sender, text)

    return send


#: what a request may take before it counts as lost
TIMEOUT = aiohttp.ClientTimeout(total=30)
#: what a failed request raises (connection refused or reset, timeout, bad reply)
REQUEST_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError)


def session(connections: int = 100) -> aiohttp.ClientSession:
    """A pooled client session: one kept-alive connection per concurrent conversation."""
    return aiohttp.ClientSession(timeout=TIMEOUT,
                                 connector=aiohttp.TCPConnector(limit=connections))


async def rest_send(
    client: aiohttp.ClientSession, sender: str, text: str, *, url: str, token: str = ""
) -> bool:
    """One REST turn; ``token`` is the REST_TOKEN of a production-profile server."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with client.post(url, json={"sender": sender, "message": text},
                           headers=headers) as response:
        return response.status == 200 and bool(await response.json())


async def open_loop(
    label: str,
    send: Send,
    messages: list[str],
    *,
    rate: float,
    seconds: float,
    conversations: int,
    seed: int = 7,
) -> Result:
    """Offer ``rate`` messages/s for ``seconds``, spread over ``conversations`` senders.

    A conversation sends its next message only after the previous one was
    answered (as a person does); arrivals that find their conversation busy go to
    another idle conversation, so the offered rate holds.
    """
    rng = random.Random(seed)
    latencies: list[float] = []
    ok = sent = 0
    idle = asyncio.Queue[int]()
    for index in range(conversations):
        idle.put_nowait(index)
    turn = [0] * conversations
    async with session(conversations) as client:

        async def one(conversation: int) -> None:
            nonlocal ok
            text = messages[turn[conversation] % len(messages)]
            turn[conversation] += 1
            begin = time.perf_counter()
            try:
                if await send(client, f"{label}-{seed}-{conversation}", text):
                    ok += 1
                    latencies.append((time.perf_counter() - begin) * 1000)
            except REQUEST_ERRORS:
                pass
            finally:
                idle.put_nowait(conversation)

        tasks = []
        start = time.perf_counter()
        next_at = start
        while next_at - start < seconds:
            next_at += rng.expovariate(rate)
            delay = next_at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                conversation = idle.get_nowait()
            except asyncio.QueueEmpty:
                sent += 1  # offered but no free conversation: counts as lost
                continue
            sent += 1
            tasks.append(asyncio.create_task(one(conversation)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    return Result(label, rate, sent, ok, elapsed, latencies)


def summary(values: list[float]) -> str:
    return f"mean {statistics.fmean(values):.1f}" if values else "n/a"
