"""The WeChat Official Account channel: ``/webhooks/wechat/webhook``.

A message's life:

1. :class:`~connectors.wechat.inbound.Verifier` checks size, signature, the
   timestamp window and the mode (with an AES key only ``<Encrypt>`` counts),
   then XML, and decrypts — a failure is a 4xx and nothing else.
2. The signed (timestamp, nonce) is claimed in the shared store with a digest
   of the message: the same pair with another message is a forgery (403); the
   same pair with the same message is a resend and goes on to dedupe.
3. The message is claimed in the dedupe store (MsgId; events: FromUserName +
   CreateTime). WeChat resends up to 3 times; a resend finds the claim and gets
   the first run's reply when it is ready in time, else ``success``.
4. The message becomes a Rasa :class:`UserMessage` from ``wechat:<openid>``
   (:mod:`bot.tickets.citizens`; text cut to
   :data:`connectors.limits.MAX_MESSAGE_CHARS`) or is answered by the channel.
5. The 5-second rule: the handler waits ``WECHAT_REPLY_TIMEOUT`` seconds (4 s)
   for the bot. Done in time: the bot's messages are packed into one passive
   reply (anything beyond one text's 2048 bytes follows via the customer-service
   API). Too slow: the handler answers ``success`` at once and the whole turn
   is sent through the customer-service API when the bot finishes.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Any

from rasa.core.channels.channel import (
    CollectingOutputChannel,
    InputChannel,
    OutputChannel,
    UserMessage,
)
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from wechatpy.events import ClickEvent, SubscribeEvent
from wechatpy.messages import (
    BaseMessage,
    ImageMessage,
    LocationMessage,
    TextMessage,
    VoiceMessage,
)

from bot.privacy import mask_text
from bot.settings import Settings, get_settings
from bot.tickets.citizens import ForeignSender, recipient, sender_id
from bot.tickets.crypto import PiiCipher
from connectors.limits import cap
from connectors.state import TTLStore, make_store
from connectors.wechat.api import (
    ApiClient,
    CustomerService,
    UndeliveredStore,
    mask_openid,
    session_storage,
)
from connectors.wechat.inbound import MAX_BODY_BYTES, MAX_SKEW, Inbound, Rejected, Verifier
from connectors.wechat.render import RenderedTurn, choice_number, render_messages
from connectors.wechat.texts import ChannelTexts, default_texts

logger = logging.getLogger(__name__)

#: how long a MsgId is remembered (WeChat resends within ~15 s). It must cover
#: the whole timestamp window (2 × MAX_SKEW): a byte-identical replay of a
#: triple is let through to dedupe, which must still know the message.
DEDUPE_TTL = 600.0
#: how long a used (timestamp, nonce) is remembered: a triple is accepted while
#: now is within MAX_SKEW of its timestamp, i.e. for at most 2 × MAX_SKEW after
#: it is first seen; one more minute for clocks of servers sharing Redis.
NONCE_TTL = 2.0 * MAX_SKEW + 60
#: how long a citizen's numbered choices stay answerable by a digit
BUTTONS_TTL = 24 * 3600.0
#: dedupe states besides "reply:<text>"
PENDING, SENT_LATER, NO_REPLY = "pending", "api", "done"


class _Later(Enum):
    """The turn outlived the reply budget and goes out through the API."""

    LATER = "later"

Handler = Callable[[UserMessage], Awaitable[Any]]


class _TurnOutput(CollectingOutputChannel):
    """Collects one turn's messages; the handler decides passive reply or API."""

    @classmethod
    def name(cls) -> str:
        return "wechat"


class WeChatOutput(OutputChannel):
    """Sends through the customer-service API: what the staff console pushes later.

    (Late turns go through the same API from :class:`WeChatInput` itself: their
    HTTP request is long answered, so a failure there is logged and kept only.)

    Rasa's ``trigger_intent?output_channel=latest`` finds this through
    :meth:`WeChatInput.get_output_channel` for citizens who last wrote on WeChat.

    ``recipient_id`` is a Rasa sender id, ``wechat:<openid>``; an id of another
    channel raises :class:`~bot.tickets.citizens.ForeignSender`, and a message
    WeChat does not take raises :class:`~connectors.wechat.api.DeliveryFailed`
    (after it was kept as undelivered): Rasa's HTTP API then answers an error,
    so the console shows the notification as failed, never as sent.
    """

    def __init__(self, channel: WeChatInput) -> None:
        self._channel = channel

    @classmethod
    def name(cls) -> str:
        return "wechat"

    @staticmethod
    def _openid(recipient_id: str) -> str:
        try:
            return recipient("wechat", recipient_id)
        except ForeignSender:
            logger.warning("wechat: refused to deliver to a sender id of another channel")
            raise

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        openid = self._openid(recipient_id)
        await self._channel.deliver(openid, render_messages([{"text": text}]))

    async def send_text_with_buttons(
        self, recipient_id: str, text: str, buttons: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        openid = self._openid(recipient_id)
        turn = render_messages([{"text": text, "buttons": buttons}],
                               hint=self._channel.texts.choose_hint)
        await self._channel.deliver(openid, turn)
        # only choices the citizen was shown may be picked by a digit
        await self._channel.remember_buttons(openid, turn.payloads)

    async def send_image_url(self, recipient_id: str, image: str, **kwargs: Any) -> None:
        # Images need an uploaded media_id; a link is what a text message can carry.
        await self.send_text_message(recipient_id, image)

    async def send_custom_json(
        self, recipient_id: str, json_message: dict[str, Any], **kwargs: Any
    ) -> None:
        # Custom payloads are for richer channels; only their text means anything here.
        if isinstance(json_message.get("text"), str):
            await self.send_text_message(recipient_id, json_message["text"])


class WeChatInput(InputChannel):
    """Rasa input channel for a WeChat Official Account (plaintext, compatible, safe mode).

    Configured entirely from :mod:`bot.settings` (``WECHAT_*``, ``REDIS_URL``);
    ``credentials.yml`` only names it: ``connectors.wechat.WeChatInput:``.
    """

    @classmethod
    def name(cls) -> str:
        return "wechat"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> WeChatInput:
        return cls()

    def __init__(
        self,
        settings: Settings | None = None,
        texts: ChannelTexts | None = None,
        store: TTLStore | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.texts = texts or default_texts()
        s = self.settings
        if not s.wechat_token:
            logger.warning("wechat: WECHAT_TOKEN is empty; every webhook request is refused")
        self.verifier = Verifier(s.wechat_token, s.wechat_appid, s.wechat_aes_key)
        self.store = store or make_store(s.redis_url)
        self.timeout = s.wechat_reply_timeout
        self.service = CustomerService(
            ApiClient(s.wechat_appid, s.wechat_secret, api_base=s.wechat_api_base,
                      session=session_storage(s.redis_url), timeout=10.0),
            UndeliveredStore(s.database_url, PiiCipher(s.effective_pii_keys)),
        )
        self._prefix = f"citizenbot:wechat:{s.wechat_appid}:"
        self._background: set[asyncio.Task[Any]] = set()

    # -- Rasa hooks ---------------------------------------------------------------
    def get_output_channel(self) -> OutputChannel:
        return WeChatOutput(self)

    def blueprint(self, on_new_message: Handler) -> Blueprint:
        hook = Blueprint("wechat_webhook", __name__)

        @hook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @hook.route("/webhook", methods=["GET"])
        async def verify(request: Request) -> HTTPResponse:
            try:
                return response.text(self.verifier.echo(_args(request)))
            except Rejected as error:
                logger.info("wechat: verification refused (%s)", error.reason)
                return response.text(error.reason, status=error.status)

        @hook.route("/webhook", methods=["POST"], stream=True)
        async def receive(request: Request) -> HTTPResponse:
            try:
                body = await _read_limited(request)
                inbound = self.verifier.open(_args(request), body)
                await self.admit(inbound)
            except Rejected as error:
                # Reasons name the check, never the sender or the text.
                level = logging.WARNING if error.status == 403 else logging.INFO
                logger.log(level, "wechat: request refused (%s %s)", error.status, error.reason)
                return response.text(error.reason, status=error.status)
            reply = await self.handle(inbound, on_new_message)
            if reply is None:
                return response.text("success")
            return response.text(self.verifier.reply(inbound, reply),
                                 content_type="application/xml")

        return hook

    # -- one message ------------------------------------------------------------------
    async def admit(self, inbound: Inbound) -> None:
        """Use the signed (timestamp, nonce) once, or raise :class:`Rejected` (403).

        The pair is stored with the message's fingerprint. Seen with the same
        fingerprint, it is WeChat resending the same message under the same
        query (nothing documents whether resends get a new nonce), so it goes
        on to MsgId dedupe, which answers it without a second run. Seen with
        another fingerprint, someone reused a captured triple for a body of
        their own: refused, and nothing is claimed or run.
        """
        key = self._key(inbound.replay_key)
        for _ in range(2):  # the entry may expire between claim and get: look twice
            if await self.store.claim(key, inbound.fingerprint, NONCE_TTL):
                return
            seen = await self.store.get(key)
            if seen == inbound.fingerprint:
                return
            if seen is not None:
                break
        raise Rejected(403, "timestamp and nonce already used for another message")

    async def handle(self, inbound: Inbound, on_new_message: Handler) -> str | None:
        """The passive reply text for a verified message, or None for ``success``."""
        message = inbound.message
        key = self._key("seen:" + dedupe_id(message))
        if not await self.store.claim(key, PENDING, DEDUPE_TTL):
            return await self._duplicate(key)
        remember: Awaitable[None] | None = None
        try:
            reply, remember = await self._run(message, on_new_message)
        except Exception:
            logger.exception("wechat: message %s failed", dedupe_id(message))
            reply = self.texts.service_error
        if reply is _Later.LATER:
            await self.store.set(key, SENT_LATER, DEDUPE_TTL)
            return None
        # The reply for resends and the turn's numbered choices are independent
        # writes: with Redis, one wait for both round trips instead of two in a row
        # (each wait is a turn of a busy event loop).
        await asyncio.gather(
            self.store.set(key, f"reply:{reply}" if reply else NO_REPLY, DEDUPE_TTL),
            *([remember] if remember is not None else []),
        )
        return reply or None

    async def _duplicate(self, key: str) -> str | None:
        """A resend: wait (at most the reply budget) for the first run's reply."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:
            state = await self.store.get(key)
            if state and state.startswith("reply:"):
                return state[len("reply:"):]
            if state != PENDING or loop.time() >= deadline:
                return None
            await asyncio.sleep(0.05)

    async def _run(
        self, message: BaseMessage, on_new_message: Handler
    ) -> tuple[str | _Later | None, Awaitable[None] | None]:
        """Hand the message to the bot within the reply budget; see the module doc.

        Returns the reply and, for a turn answered in time, the still unawaited
        write of its numbered choices (:meth:`handle` awaits it with the dedupe write).
        """
        openid = str(message.source)
        routed = await self.to_bot(message)
        if routed is None:
            return None, None
        if isinstance(routed, _Say):
            return routed.text, None
        text, metadata = routed
        if logger.isEnabledFor(logging.DEBUG):  # no masking work for a line nobody reads
            logger.debug("wechat: %s from %s: %s", message.type, mask_openid(openid),
                         mask_text(text))
        output = _TurnOutput()
        user_message = UserMessage(
            text, output, sender_id(self.name(), openid), input_channel=self.name(),
            message_id=str(message.id) if message.id else None, metadata=metadata,
        )
        # The turn runs as its own task, so that it outlives this request when the
        # budget runs out or WeChat hangs up; it opens `answered` as its last step,
        # which wakes this handler one turn of the event loop after the bot is done
        # (`asyncio.wait` took two: the task's done callbacks, then the waiter's).
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[None] = loop.create_future()
        task = asyncio.ensure_future(_opening(on_new_message(user_message), answered))
        budget = loop.call_later(self.timeout, _open, answered)
        try:
            await answered
        except asyncio.CancelledError:  # WeChat hung up: the turn still reaches the citizen
            self._later(self._finish_late(openid, task, output))
            raise
        finally:
            budget.cancel()
        if not task.done():
            self._later(self._finish_late(openid, task, output))
            return _Later.LATER, None
        task.result()  # raises the bot's error, if any
        turn = self._render(output)
        if len(turn.texts) > 1:
            self._later(self.service.send(openid, turn.texts[1:]))
        return (turn.texts[0] if turn.texts else None,
                self.remember_buttons(openid, turn.payloads))

    async def _finish_late(
        self, openid: str, task: asyncio.Future[Any], output: _TurnOutput
    ) -> None:
        try:
            await task
        except Exception:
            logger.exception("wechat: late turn for %s failed", mask_openid(openid))
            output.messages.append({"text": self.texts.service_error})
        turn = self._render(output)
        await self.remember_buttons(openid, turn.payloads)
        if turn.texts:
            await self.service.send(openid, turn.texts)

    def _render(self, output: CollectingOutputChannel) -> RenderedTurn:
        return render_messages(output.messages, hint=self.texts.choose_hint)

    def _later(self, coroutine: Awaitable[Any]) -> None:
        """Run after the HTTP answer; keep a reference so the task is not collected."""
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- message types ----------------------------------------------------------------
    async def to_bot(self, message: BaseMessage) -> tuple[str, dict[str, Any]] | _Say | None:
        """What the bot receives for ``message``: (text, metadata); or what the channel
        says itself (:class:`_Say`); or None when nothing is to be said (most events)."""
        texts = self.texts
        if isinstance(message, TextMessage):
            text = cap(str(message.content or "").strip())
            number = choice_number(text)
            if number is not None:
                payloads = await self.recall_buttons(str(message.source))
                if 1 <= number <= len(payloads):
                    return payloads[number - 1], {"wechat_choice": number}
            return text, {}
        if isinstance(message, VoiceMessage):
            recognized = cap(str(message.recognition or "").strip())
            return (recognized, {"voice": True}) if recognized else _Say(texts.please_send_text)
        if isinstance(message, LocationMessage):
            location = _location(message)
            return cap(location["label"] or texts.location), {"location": location}
        if isinstance(message, ImageMessage):
            attachment = {"type": "image", "media_id": str(message.media_id or ""),
                          "url": str(message.image or "")}
            return texts.image, {"attachments": [attachment]}
        if isinstance(message, SubscribeEvent):
            # like wechat_menu, marks a payload the channel chose (from a verified
            # event), not text the citizen typed
            return texts.subscribe, {"wechat_event": "subscribe"}
        if isinstance(message, ClickEvent):
            payload = texts.menu.get(str(message.key or ""))
            return (payload, {"wechat_menu": str(message.key)}) if payload else _Say(
                texts.unknown_menu)
        if message.type == "event":
            return None  # unsubscribe, view, scan, location reports …: nothing to say
        return _Say(texts.please_send_text)

    # -- numbered choices -------------------------------------------------------------
    async def remember_buttons(self, openid: str, payloads: list[str]) -> None:
        """The last turn's choices; a turn without buttons forgets them, so a later
        bare number is read as a number."""
        key = self._key("buttons:" + openid)
        if payloads:
            await self.store.set(key, "\x1f".join(payloads), BUTTONS_TTL)
        else:
            await self.store.delete(key)

    async def recall_buttons(self, openid: str) -> list[str]:
        value = await self.store.get(self._key("buttons:" + openid))
        return value.split("\x1f") if value else []

    async def deliver(self, openid: str, turn: RenderedTurn) -> None:
        """Send a turn by the API; raises :class:`~connectors.wechat.api.DeliveryFailed`."""
        if turn.texts:
            await self.service.deliver(openid, turn.texts)

    def _key(self, suffix: str) -> str:
        return self._prefix + suffix


def _open(gate: asyncio.Future[None]) -> None:
    if not gate.done():
        gate.set_result(None)


async def _opening(turn: Awaitable[Any], gate: asyncio.Future[None]) -> Any:
    """Run ``turn``, then open ``gate`` (also when it fails)."""
    try:
        return await turn
    finally:
        _open(gate)


class _Say:
    """A reply the channel gives itself, without the bot."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def dedupe_id(message: BaseMessage) -> str:
    """MsgId for messages; FromUserName + CreateTime for events (they have no MsgId)."""
    if message.id:
        return f"msg:{message.id}"
    digest = hashlib.sha1(str(message.source).encode()).hexdigest()[:16]
    return f"event:{digest}:{message.time}"


def _location(message: LocationMessage) -> dict[str, Any]:
    def number(value: Any) -> float | None:
        try:
            return float(value)
        except (TypeError, ValueError):
            return None

    return {"lat": number(message.location_x), "lon": number(message.location_y),
            "label": str(message.label or "").strip()}


def _args(request: Request) -> dict[str, str]:
    """The first value of each query parameter."""
    return {key: values[0] for key, values in request.args.items() if values}


async def _read_limited(request: Request) -> bytes:
    """Read the body, refusing it once it passes :data:`MAX_BODY_BYTES`."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise Rejected(413, "body too large")
    if request.stream is None:  # a route not declared streaming: sanic read the body already
        if len(request.body or b"") > MAX_BODY_BYTES:
            raise Rejected(413, "body too large")
        return bytes(request.body or b"")
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.stream.read()
        if chunk is None:
            break
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise Rejected(413, "body too large")
        chunks.append(chunk)
    return b"".join(chunks)


__all__ = ["NONCE_TTL", "WeChatInput", "WeChatOutput", "dedupe_id"]
