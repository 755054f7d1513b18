"""The conversation lock on Redis (connectors.lock_store): what Rasa's store did, atomically.

Real Redis on 127.0.0.1 (skipped when it is not running); each test uses its own
key prefix and cleans up after itself.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator

import pytest
from rasa.core.lock_store import LockError, LockStore, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

from bot.runner import rasa_environment
from connectors.lock_store import CitizenLockStore
from tests.production.cluster import REDIS_URL, redis_available

pytestmark = pytest.mark.skipif(not redis_available(), reason="Redis not running")

DB = int(REDIS_URL.rsplit("/", 1)[1])


@pytest.fixture
def prefix() -> Iterator[str]:
    prefix = "locktest" + secrets.token_hex(4)
    yield prefix
    store = RedisLockStore(host="127.0.0.1", db=DB)
    for key in store.red.scan_iter(f"{prefix}:*"):
        store.red.delete(key)


def _ours(prefix: str) -> CitizenLockStore:
    config = EndpointConfig(url="127.0.0.1", type="connectors.lock_store.CitizenLockStore",
                            port="6379", db=str(DB), key_prefix=prefix)
    store = LockStore.create(config)
    assert isinstance(store, CitizenLockStore)
    return store


def test_one_conversation_is_served_in_arrival_order(prefix: str) -> None:
    store = _ours(prefix)
    order: list[str] = []

    async def turn(name: str, conversation: str, hold: float) -> None:
        async with store.lock(conversation):
            order.append(f"{name} in")
            await asyncio.sleep(hold)
            order.append(f"{name} out")

    async def main() -> None:
        first = asyncio.ensure_future(turn("a", "rest:1", 0.2))
        await asyncio.sleep(0.02)
        second = asyncio.ensure_future(turn("b", "rest:1", 0.0))
        await asyncio.sleep(0.02)
        third = asyncio.ensure_future(turn("c", "rest:1", 0.0))
        other = asyncio.ensure_future(turn("x", "rest:2", 0.0))
        await asyncio.gather(first, second, third, other)

    asyncio.run(main())
    ours = [step for step in order if not step.startswith("x")]
    assert ours == ["a in", "a out", "b in", "b out", "c in", "c out"]
    # another conversation did not wait for this one
    assert order.index("x out") < order.index("a out")
    # the last one out deleted the lock
    assert store.get_lock("rest:1") is None and store.get_lock("rest:2") is None


def test_rasas_store_and_this_one_share_a_lock(prefix: str) -> None:
    ours = _ours(prefix)
    rasas = RedisLockStore(host="127.0.0.1", db=DB, key_prefix=prefix)
    waited: list[float] = []

    async def main() -> None:
        # a server still on Rasa's store holds the conversation …
        ticket = rasas.issue_ticket("rest:3")
        begin = time.monotonic()

        async def release_later() -> None:
            await asyncio.sleep(0.3)
            rasas.cleanup("rest:3", ticket)

        releasing = asyncio.ensure_future(release_later())
        # … and this store waits for it, and is seen holding it by Rasa's store
        async with ours.lock("rest:3"):
            waited.append(time.monotonic() - begin)
            lock = rasas.get_lock("rest:3")
            assert lock is not None and lock.now_serving == ticket + 1
        await releasing

    asyncio.run(main())
    assert waited[0] >= 0.25
    assert rasas.get_lock("rest:3") is None


def test_an_abandoned_ticket_expires(prefix: str) -> None:
    ours = _ours(prefix)
    rasas = RedisLockStore(host="127.0.0.1", db=DB, key_prefix=prefix)
    rasas.issue_ticket("rest:4", lock_lifetime=0.3)  # a server died holding it

    async def main() -> float:
        begin = time.monotonic()
        async with ours.lock("rest:4"):
            return time.monotonic() - begin

    assert 0.2 <= asyncio.run(main()) < 5
    assert ours.get_lock("rest:4") is None


def test_waiting_past_ones_own_lifetime_is_an_error(prefix: str) -> None:
    ours = _ours(prefix)
    rasas = RedisLockStore(host="127.0.0.1", db=DB, key_prefix=prefix)
    rasas.issue_ticket("rest:5", lock_lifetime=30)

    async def main() -> None:
        async with ours.lock("rest:5", lock_lifetime=0.2):
            pass

    with pytest.raises(LockError):
        asyncio.run(main())


def test_redis_down_is_a_lock_error() -> None:
    config = EndpointConfig(url="127.0.0.1", type="connectors.lock_store.CitizenLockStore",
                            port="1", db="1", socket_timeout=1)
    store = LockStore.create(config)

    async def main() -> None:
        async with store.lock("rest:6"):
            pass

    with pytest.raises(LockError):
        asyncio.run(main())


def test_the_runner_names_this_store_for_redis() -> None:
    from bot.settings import Settings

    env = rasa_environment(Settings(redis_url="redis://127.0.0.1:6379/3"))
    assert env["LOCK_STORE_TYPE"] == "connectors.lock_store.CitizenLockStore"
    assert (env["LOCK_STORE_HOST"], env["LOCK_STORE_PORT"], env["LOCK_STORE_DB"]) == (
        "127.0.0.1", "6379", "3")
    assert rasa_environment(Settings(redis_url=""))["LOCK_STORE_TYPE"] == "in_memory"
