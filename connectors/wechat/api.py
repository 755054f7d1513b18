"""Sending through WeChat's customer-service API (客服消息), and keeping what could not be sent.

Used when the bot misses the 5-second window of a passive reply, for the rest
of a long answer, and for notifications the staff console pushes later.

* wechatpy's client is blocking (``requests``), so every call runs in a small
  thread pool of its own, never on the event loop and never in Rasa's executor.
* The access token lives in wechatpy session storage (Redis when configured, so
  all servers share one token) and is stored with a TTL :data:`TOKEN_MARGIN`
  seconds shorter than WeChat's, so every process refreshes it before expiry.
* Transient failures (errcode -1 "system busy", network errors) are retried
  with backoff. Final failures — 45015 (the 48-hour window is over), 45047
  (quota of messages per window), anything else — are logged (masked) and kept
  in :class:`UndeliveredStore`, so no answer is silently lost. Where someone
  waits for the outcome (a staff notification through Rasa's HTTP API),
  :meth:`CustomerService.deliver` raises :class:`DeliveryFailed` as well, so the
  failure is seen and never reported as "sent".
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import requests
from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Engine
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.session import SessionStorage
from wechatpy.session.memorystorage import MemoryStorage

from bot.privacy import mask_text
from bot.tickets import db
from bot.tickets.crypto import PiiCipher
from bot.tickets.schema import wechat_undelivered

logger = logging.getLogger(__name__)

#: seconds before WeChat's expiry that a stored token is considered gone
TOKEN_MARGIN = 300
#: attempts per message for transient errors, and the first backoff (doubles)
ATTEMPTS = 3
BACKOFF = 0.3
#: errcodes worth retrying: -1 system busy; None = HTTP/network failure
TRANSIENT = {-1, None}
#: errcodes that mean "not now, maybe never": keep the message, do not retry
WINDOW_CLOSED = 45015
QUOTA_CODES = {45047, 45009, 45011}


def mask_openid(openid: str) -> str:
    """OpenIDs identify a person within the account: log only a prefix."""
    return f"{openid[:6]}…" if openid else "?"


class DeliveryFailed(RuntimeError):
    """WeChat did not take a message; it was kept in the undelivered store.

    The text says only why (errcode and its meaning), never to whom or what:
    Rasa puts it into the HTTP error the staff console reads.
    """

    def __init__(self, errcode: int | None, kind: str) -> None:
        super().__init__(f"WeChat customer-service message not delivered ({kind}, "
                         f"errcode {errcode}); kept as undelivered")
        self.errcode = errcode
        self.kind = kind


class ApiClient(WeChatClient):
    """wechatpy's client with a configurable base URL (tests use a local server)
    and a token that expires early in shared storage."""

    def __init__(
        self, appid: str, secret: str, *, api_base: str, session: SessionStorage, timeout: float
    ) -> None:
        super().__init__(appid, secret, session=session, timeout=timeout)
        self.API_BASE_URL = api_base if api_base.endswith("/") else api_base + "/"

    def fetch_access_token(self) -> dict[str, Any]:
        result: dict[str, Any] = self._fetch_access_token(
            url=f"{self.API_BASE_URL}token",
            params={"grant_type": "client_credential", "appid": self.appid,
                    "secret": self.secret},
        )
        ttl = max(int(result.get("expires_in", 7200)) - TOKEN_MARGIN, 60)
        self.session.set(self.access_token_key, result["access_token"], ttl)
        self.expires_at = int(time.time()) + ttl
        return result


def session_storage(redis_url: str) -> SessionStorage:
    """Where wechatpy keeps the access token: Redis shared by all servers, or memory."""
    if not redis_url:
        return MemoryStorage()
    import redis
    from wechatpy.session.redisstorage import RedisStorage

    return RedisStorage(redis.Redis.from_url(redis_url), prefix="citizenbot:wechatpy")


@dataclass(frozen=True)
class Undelivered:
    id: int
    created_at: datetime
    openid: str
    text: str
    errcode: int | None
    errmsg: str


class UndeliveredStore:
    """Bot messages WeChat refused, in the ticket database (table ``wechat_undelivered``).

    In the main database rather than a file of each server's own: behind a load
    balancer any server may be the one WeChat refused, and staff must see them
    all, in the backups. Append-only from the channel; an operator lists them
    (``citizenbot wechat undelivered``) and deletes what was handled. The text
    must stay re-sendable, so it is encrypted with the personal-data key, not
    masked. The schema is brought up to date on first use (the channel may
    start before anything else opened the database).
    """

    def __init__(self, database_url: str, cipher: PiiCipher) -> None:
        self.database_url = database_url
        self.cipher = cipher
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                engine = db.make_engine(self.database_url)
                db.upgrade(engine)
                self._engine = engine
            return self._engine

    def keep(self, openid: str, text: str, errcode: int | None, errmsg: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                insert(wechat_undelivered).values(
                    created_at=datetime.now(timezone.utc).replace(tzinfo=None),
                    openid=openid,
                    text_enc=self.cipher.encrypt(text) or "",
                    errcode=errcode,
                    errmsg=errmsg,
                )
            )

    def all(self) -> list[Undelivered]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(wechat_undelivered).order_by(wechat_undelivered.c.id)
            ).all()
        return [
            Undelivered(row.id, row.created_at.replace(tzinfo=timezone.utc), row.openid,
                        self.cipher.decrypt(row.text_enc) or "", row.errcode, row.errmsg)
            for row in rows
        ]

    def delete(self, ids: list[int]) -> int:
        with self.engine.begin() as connection:
            result = connection.execute(
                delete(wechat_undelivered).where(wechat_undelivered.c.id.in_(ids))
            )
        return int(result.rowcount or 0)

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


class CustomerService:
    """Async front of the 客服 API.

    ``await send(openid, texts)`` never raises (late turns, whose HTTP request
    is long answered); ``await deliver(openid, texts)`` raises
    :class:`DeliveryFailed` for callers that must report a failure.
    """

    def __init__(self, client: ApiClient, undelivered: UndeliveredStore, workers: int = 4) -> None:
        self.client = client
        self.undelivered = undelivered
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="wechat-api")

    async def _call(self, func: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, func, *args)

    async def _send_one(self, openid: str, text: str) -> tuple[bool, int | None, str]:
        errcode: int | None = None
        errmsg = ""
        for attempt in range(ATTEMPTS):
            try:
                await self._call(self.client.message.send_text, openid, text)
                return True, None, ""
            except WeChatClientException as error:
                errcode = None if error.errcode is None else int(error.errcode)
                errmsg = str(error.errmsg or "HTTP error")
            except requests.RequestException as error:
                errcode, errmsg = None, f"network: {type(error).__name__}"
            except Exception as error:  # never let a delivery crash the server
                logger.exception("wechat: unexpected error sending to %s", mask_openid(openid))
                return False, None, f"unexpected: {type(error).__name__}"
            if errcode not in TRANSIENT or attempt == ATTEMPTS - 1:
                break
            await asyncio.sleep(BACKOFF * 2**attempt)
        return False, errcode, errmsg

    async def send(self, openid: str, texts: list[str]) -> bool:
        """Send ``texts`` in order; keep the first refused one and all after it.

        After a refusal the rest is kept without trying: the window or quota
        that refused one message refuses the next, and order must not break.
        """
        return await self._send_all(openid, texts) is None

    async def deliver(self, openid: str, texts: list[str]) -> None:
        """:meth:`send`, raising :class:`DeliveryFailed` when a message was not taken."""
        failure = await self._send_all(openid, texts)
        if failure is not None:
            raise DeliveryFailed(*failure)

    async def _send_all(self, openid: str, texts: list[str]) -> tuple[int | None, str] | None:
        """None when every text went out, else (errcode, kind) of the first refusal."""
        for index, text in enumerate(texts):
            ok, errcode, errmsg = await self._send_one(openid, text)
            if ok:
                continue
            kind = ("48-hour window closed" if errcode == WINDOW_CLOSED
                    else "quota reached" if errcode in QUOTA_CODES else "failed")
            logger.warning(
                "wechat: customer-service message to %s %s (errcode %s, %s); kept %d "
                "message(s) as undelivered: %s",
                mask_openid(openid), kind, errcode, errmsg, len(texts) - index,
                mask_text(text)[:80],
            )
            for rest in texts[index:]:
                try:
                    await self._call(self.undelivered.keep, openid, rest, errcode, errmsg)
                except Exception:
                    logger.exception("wechat: could not keep an undelivered message")
            return errcode, kind
        return None

    def close(self) -> None:
        self._pool.shutdown(wait=False)
