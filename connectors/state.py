"""Short-lived state the channels share: which messages were seen (dedupe: WeChat
MsgIds, Telegram update ids), which signed (timestamp, nonce) pairs were used
(replay guard), and each citizen's last buttons.

With ``REDIS_URL`` set, every Rasa server behind the load balancer shares it
(WeChat may resend a message to another server, and an attacker may replay a
triple to another server); otherwise it lives in this process. Both stores
expire entries, so nothing here grows without bound.
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

logger = logging.getLogger(__name__)


class TTLStore(Protocol):
    """A key-value store whose entries expire."""

    async def claim(self, key: str, value: str, ttl: float) -> bool:
        """Set ``key`` only if absent (SET NX); True when this caller got it."""

    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str, ttl: float) -> None: ...

    async def delete(self, key: str) -> None: ...


class MemoryStore:
    """In-process :class:`TTLStore`; expired entries are swept as new ones arrive."""

    #: sweep when the dict grows past this many entries since the last sweep
    SWEEP_EVERY = 1024

    def __init__(self) -> None:
        self._data: dict[str, tuple[float, str]] = {}
        self._since_sweep = 0

    def _live(self, key: str) -> str | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            del self._data[key]
            return None
        return entry[1]

    def _sweep(self) -> None:
        self._since_sweep += 1
        if self._since_sweep < self.SWEEP_EVERY:
            return
        self._since_sweep = 0
        now = time.monotonic()
        for key in [k for k, (expires, _) in self._data.items() if expires <= now]:
            del self._data[key]

    async def claim(self, key: str, value: str, ttl: float) -> bool:
        # No await between the check and the set: atomic on the event loop.
        if self._live(key) is not None:
            return False
        self._sweep()
        self._data[key] = (time.monotonic() + ttl, value)
        return True

    async def get(self, key: str) -> str | None:
        return self._live(key)

    async def set(self, key: str, value: str, ttl: float) -> None:
        self._sweep()
        self._data[key] = (time.monotonic() + ttl, value)

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)


class RedisStore:
    """:class:`TTLStore` on Redis (``SET NX PX``), shared by every Rasa server.

    When Redis is unreachable the channel keeps answering citizens: every
    operation falls back to this process's :class:`MemoryStore`, so dedupe and
    the replay guard still hold within one server (a possible duplicate across
    servers beats a lost message) and nothing raises into the webhook.
    """

    def __init__(self, url: str) -> None:
        from redis import asyncio as aioredis

        self._redis = aioredis.Redis.from_url(url, decode_responses=True)
        self._fallback = MemoryStore()

    async def claim(self, key: str, value: str, ttl: float) -> bool:
        try:
            return bool(await self._redis.set(key, value, px=int(ttl * 1000), nx=True))
        except Exception as error:  # redis.RedisError, OSError
            logger.warning("wechat: Redis unavailable (%s); this server's memory claims", error)
            return await self._fallback.claim(key, value, ttl)

    async def get(self, key: str) -> str | None:
        try:
            value = await self._redis.get(key)
        except Exception as error:
            logger.warning("wechat: Redis read failed (%s); reading this server's memory", error)
            return await self._fallback.get(key)
        return await self._fallback.get(key) if value is None else str(value)

    async def set(self, key: str, value: str, ttl: float) -> None:
        try:
            await self._redis.set(key, value, px=int(ttl * 1000))
        except Exception as error:
            logger.warning("wechat: Redis write failed (%s); kept in this server's memory", error)
            await self._fallback.set(key, value, ttl)

    async def delete(self, key: str) -> None:
        await self._fallback.delete(key)
        try:
            await self._redis.delete(key)
        except Exception as error:
            logger.warning("wechat: Redis delete failed (%s)", error)


def make_store(redis_url: str) -> TTLStore:
    """Redis when configured, else this process's memory."""
    return RedisStore(redis_url) if redis_url else MemoryStore()
