"""Rasa's Redis ticket lock in two awaited round trips per message (``endpoints.yml``).

Every message takes its conversation's lock (``Agent.handle_message``), so two
messages of one conversation are never processed at once, by one Rasa server
or several. Rasa 3.6's ``RedisLockStore`` does it with seven *blocking*
round trips to Redis per message (get + set to take a ticket, get to check it,
get + set + get + delete to give it back), on the event loop: every other
message waits while Redis answers, and on two busy cores that answer waits for
Redis to be scheduled. Its read-modify-write steps are not atomic either: two
servers taking a ticket at once can both get the same number.

:class:`CitizenLockStore` keeps the algorithm, the keys and the stored format
(a lock written by Rasa's store is read by this one and the other way round)
and does each step as one Lua script, atomically, awaited on an asyncio Redis
connection:

* take a ticket: drop expired tickets, append ours, tell whether it is the one
  served now — the common case (nobody else in this conversation) needs nothing
  more;
* otherwise wait, polling: drop expired tickets, is ours served now? Our own
  ticket having expired (or the lock having gone) is Rasa's ``LockError``;
* give it back: remove our ticket (and expired ones); the last one out deletes
  the lock.

Redis failures surface as ``LockError`` (the message hook answers with the
service apology, as before). The synchronous client Rasa's store keeps (``red``)
still serves the readiness probe.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import weakref
from collections import deque
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any

from rasa.core.lock import TicketLock
from rasa.core.lock_store import (
    DEFAULT_SOCKET_TIMEOUT_IN_SECONDS,
    LOCK_LIFETIME,
    LockError,
    RedisLockStore,
)

logger = logging.getLogger(__name__)

#: seconds between two looks at a lock someone else holds (Rasa's default is 1 s,
#: with a blocking look; an awaited look is cheap, and a citizen who sent two
#: messages in a row gets the second answer sooner)
POLL_SECONDS = 0.05

# Tickets are stored as Rasa stores them: {"conversation_id": …, "tickets": [json of
# {"number": n, "expires": t}, …]}, the list always written as a JSON array.
_COMMON = """
local function live_tickets(raw, now)
  local tickets = {}
  if raw then
    for _, item in ipairs(cjson.decode(raw)['tickets'] or {}) do
      local ticket = cjson.decode(item)
      if not (now > tonumber(ticket['expires'])) then
        table.insert(tickets, ticket)
      end
    end
  end
  return tickets
end
local function encoded(conversation_id, tickets)
  local parts = {}
  for _, ticket in ipairs(tickets) do
    table.insert(parts, cjson.encode(string.format('{"number": %d, "expires": %.6f}',
      ticket['number'], ticket['expires'])))
  end
  return '{"conversation_id": ' .. cjson.encode(conversation_id) .. ', "tickets": ['
    .. table.concat(parts, ', ') .. ']}'
end
"""

#: KEYS: lock key; ARGV: conversation id, now, lifetime → {our number, now serving, lock}
_ISSUE = _COMMON + """
local now = tonumber(ARGV[2])
local tickets = live_tickets(redis.call('GET', KEYS[1]), now)
local number = 0
if #tickets > 0 then number = tickets[#tickets]['number'] + 1 end
table.insert(tickets, {number = number, expires = now + tonumber(ARGV[3])})
local lock = encoded(ARGV[1], tickets)
redis.call('SET', KEYS[1], lock)
return {number, tickets[1]['number'], lock}
"""

#: KEYS: lock key; ARGV: conversation id, now, our number → {now serving or -1, lock}
_CHECK = _COMMON + """
local raw = redis.call('GET', KEYS[1])
if not raw then return {-1, ''} end
local tickets = live_tickets(raw, tonumber(ARGV[2]))
local lock = encoded(ARGV[1], tickets)
redis.call('SET', KEYS[1], lock)
local ours = false
for _, ticket in ipairs(tickets) do
  if ticket['number'] == tonumber(ARGV[3]) then ours = true end
end
if not ours then return {-1, lock} end
return {tickets[1]['number'], lock}
"""

#: KEYS: lock key; ARGV: conversation id, now, our number → tickets left
_RELEASE = _COMMON + """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local left = {}
for _, ticket in ipairs(live_tickets(raw, tonumber(ARGV[2]))) do
  if ticket['number'] ~= tonumber(ARGV[3]) then table.insert(left, ticket) end
end
if #left == 0 then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], encoded(ARGV[1], left))
end
return #left
"""


def _lock(conversation_id: str, stored: Any) -> TicketLock:
    """The TicketLock a script saw (what Rasa's ``lock()`` yields)."""
    text = stored.decode() if isinstance(stored, bytes) else str(stored or "")
    if not text:
        return TicketLock(conversation_id, deque())
    return TicketLock.from_dict(json.loads(text))


class CitizenLockStore(RedisLockStore):
    """``RedisLockStore`` whose ``lock()`` takes and gives back a ticket atomically,
    awaited, in one round trip each (see the module docstring)."""

    def __init__(self, endpoint_config: Any = None, **kwargs: Any) -> None:
        options = dict(getattr(endpoint_config, "kwargs", None) or {}, **kwargs)
        if endpoint_config is not None and getattr(endpoint_config, "url", None):
            options.setdefault("host", endpoint_config.url)
        options.pop("type", None)
        options.pop("store_type", None)
        super().__init__(**options)
        self._options = {
            "host": options.get("host") or "localhost",
            "port": int(options.get("port") or 6379),
            "db": int(options.get("db") or 1),
            "username": options.get("username"),
            "password": options.get("password"),
            "ssl": bool(options.get("use_ssl", False)),
            "socket_timeout": float(
                options.get("socket_timeout") or DEFAULT_SOCKET_TIMEOUT_IN_SECONDS
            ),
        }
        self._scripts: weakref.WeakKeyDictionary[Any, tuple[Any, Any, Any]] = (
            weakref.WeakKeyDictionary()
        )

    def _loop_scripts(self) -> tuple[Any, Any, Any]:
        """The three scripts on this event loop's asyncio client (made on first use)."""
        import redis.asyncio

        loop = asyncio.get_running_loop()
        scripts = self._scripts.get(loop)
        if scripts is None:
            client = redis.asyncio.Redis(**self._options)
            scripts = (client.register_script(_ISSUE), client.register_script(_CHECK),
                       client.register_script(_RELEASE))
            self._scripts[loop] = scripts
        return scripts

    @asynccontextmanager
    async def lock(
        self,
        conversation_id: str,
        lock_lifetime: float = LOCK_LIFETIME,
        wait_time_in_seconds: float = 1,
    ) -> AsyncGenerator[TicketLock, None]:
        """Hold ``conversation_id``'s lock (FIFO by ticket) for the block's duration."""
        from redis.exceptions import RedisError

        issue, check, release = self._loop_scripts()
        key = self.key_prefix + conversation_id
        try:
            number, serving, stored = await issue(
                keys=[key], args=[conversation_id, time.time(), lock_lifetime]
            )
        except RedisError as error:
            raise LockError(f"Error while acquiring lock. Error:\n{error}") from error
        try:
            poll = min(float(wait_time_in_seconds), POLL_SECONDS)
            while int(serving) != int(number):
                await asyncio.sleep(poll)
                try:
                    serving, stored = await check(
                        keys=[key], args=[conversation_id, time.time(), number]
                    )
                except RedisError as error:
                    raise LockError(f"Error while waiting for lock. Error:\n{error}") from error
                if int(serving) < 0:
                    raise LockError(
                        f"Could not acquire lock for conversation_id '{conversation_id}'."
                    )
            yield _lock(conversation_id, stored)
        finally:
            try:
                await release(keys=[key], args=[conversation_id, time.time(), number])
            except RedisError as error:
                # The turn is done (and saved); its ticket expires on its own after
                # lock_lifetime. Rasa's store would raise here and lose the answer.
                logger.warning("lock of a conversation not released: %s", error)
