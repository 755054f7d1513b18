"""The Telegram channel: ``POST /webhooks/telegram/webhook``, or long polling in development.

Built on python-telegram-bot's :class:`~telegram.ext.Application` without its
web server: Rasa's Sanic server receives the webhook, and PTB does what it is
good at — parsing updates, calling the Bot API, respecting flood limits
(:class:`~telegram.ext.AIORateLimiter`: ~1 message/s per chat, 30/s overall).

An update's life:

1. The ``X-Telegram-Bot-Api-Secret-Token`` header is compared (constant time)
   with ``TELEGRAM_SECRET_TOKEN``; a wrong or missing one is a 403 and nothing
   else happens.
2. ``Update.de_json`` → ``Application.process_update`` → :meth:`TelegramInput.handle`,
   the same path long polling (``citizenbot run --telegram-polling``) takes.
3. The update_id is claimed in the dedupe store (Redis ``SET NX`` with
   ``REDIS_URL``, else in-process): Telegram resends on any non-2xx or timeout,
   and a resend must not file a complaint twice.
4. :mod:`connectors.telegram.inbound` decides what it means; a message for the
   bot becomes a Rasa :class:`UserMessage` answered through :class:`TelegramOutput`.

The webhook answers 200 once the turn is done, also when the bot failed (the
citizen then gets an apology): a non-2xx would only make Telegram resend.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatAction, MessageLimit
from telegram.error import TelegramError
from telegram.ext import AIORateLimiter, Application, ContextTypes, TypeHandler

from bot.settings import Settings, get_settings
from bot.tickets.citizens import recipient, sender_id
from connectors.limits import cap
from connectors.state import TTLStore, make_store
from connectors.telegram.inbound import STORED_PAYLOAD, Button, Say, ToBot, translate
from connectors.telegram.texts import TelegramTexts, default_texts

logger = logging.getLogger(__name__)

#: how long an update_id is remembered (Telegram gives up resending after 24 h)
DEDUPE_TTL = 24 * 3600.0
#: how long a long button payload stays answerable
BUTTON_TTL = 7 * 24 * 3600.0
#: Telegram's limit on callback_data, in bytes
CALLBACK_DATA_BYTES = 64
#: the largest webhook body we read (an update is a few kB)
MAX_BODY_BYTES = 1 << 20
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

Handler = Callable[[UserMessage], Awaitable[Any]]


class TelegramOutput(OutputChannel):
    """Sends the bot's messages with the Bot API: turns and console notifications.

    Rasa's ``trigger_intent?output_channel=latest`` finds this through
    :meth:`TelegramInput.get_output_channel` for citizens who last wrote on Telegram.
    Recipient ids are ``telegram:<chat id>`` (:mod:`bot.tickets.citizens`); an id of
    another channel raises :class:`~bot.tickets.citizens.ForeignSender`, and a failed
    Bot API call raises too, so the console never records an undelivered reply as sent.
    """

    def __init__(self, channel: TelegramInput) -> None:
        self._channel = channel

    @classmethod
    def name(cls) -> str:
        return "telegram"

    @property
    def _bot(self) -> Any:
        assert self._channel.application is not None, "Telegram is not started"
        return self._channel.application.bot

    @staticmethod
    def _chat(recipient_id: str) -> int:
        return int(recipient("telegram", recipient_id))

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        limit = MessageLimit.MAX_TEXT_LENGTH
        for start in range(0, max(len(text), 1), limit):
            await self._bot.send_message(
                chat_id=self._chat(recipient_id), text=text[start:start + limit]
            )

    async def send_text_with_buttons(
        self, recipient_id: str, text: str, buttons: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        keyboard = await self._channel.keyboard(buttons)
        await self._bot.send_message(
            chat_id=self._chat(recipient_id), text=text or "…", reply_markup=keyboard
        )

    async def send_image_url(self, recipient_id: str, image: str, **kwargs: Any) -> None:
        await self._bot.send_photo(chat_id=self._chat(recipient_id), photo=image)

    async def send_custom_json(
        self, recipient_id: str, json_message: dict[str, Any], **kwargs: Any
    ) -> None:
        # Custom payloads are for richer channels; only their text means anything here.
        if isinstance(json_message.get("text"), str):
            await self.send_text_message(recipient_id, json_message["text"])


class TelegramInput(InputChannel):
    """Rasa input channel for a Telegram bot (webhook, or polling for development).

    Configured from :mod:`bot.settings` (``TELEGRAM_*``, ``REDIS_URL``);
    ``credentials.yml`` only names it: ``connectors.telegram.TelegramInput:``.
    Without ``TELEGRAM_TOKEN`` the channel stays off and its webhook answers 503.
    """

    @classmethod
    def name(cls) -> str:
        return "telegram"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> TelegramInput:
        return cls()

    def __init__(
        self,
        settings: Settings | None = None,
        store: TTLStore | None = None,
        texts: TelegramTexts | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.store = store or make_store(self.settings.redis_url)
        self.texts = texts or default_texts()
        self.application: Application | None = None
        self._on_new_message: Handler | None = None

    def get_output_channel(self) -> OutputChannel | None:
        return TelegramOutput(self) if self.application is not None else None

    # -- life cycle ------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect to the Bot API (``getMe``) and start PTB; polling when configured.

        A failure is logged, not raised: the Rasa server keeps serving the other
        channels, and Telegram resends what the 503 webhook refused.
        """
        settings = self.settings
        if not settings.telegram_token:
            logger.info("telegram: TELEGRAM_TOKEN is empty; the channel is off")
            return
        builder = (
            Application.builder()
            .token(settings.telegram_token)
            .base_url(settings.telegram_api_base)
            .rate_limiter(AIORateLimiter(max_retries=2))
        )
        if not settings.telegram_polling:
            builder = builder.updater(None)
        application = builder.build()
        application.add_handler(TypeHandler(Update, self.handle))
        try:
            await application.initialize()
            await application.start()
            if settings.telegram_polling:
                assert application.updater is not None
                await application.updater.start_polling(allowed_updates=Update.ALL_TYPES)
                logger.info("telegram: polling for updates (development mode)")
        except TelegramError as error:
            logger.error("telegram: could not start (%s); the webhook answers 503", error)
            return
        self.application = application

    async def stop(self) -> None:
        application, self.application = self.application, None
        if application is None:
            return
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        await application.stop()
        await application.shutdown()

    # -- inbound ---------------------------------------------------------------------------
    def _secret_ok(self, request: Request) -> bool:
        expected = self.settings.telegram_secret_token
        given = request.headers.get(SECRET_HEADER, "")
        if not expected:
            logger.warning("telegram: TELEGRAM_SECRET_TOKEN is empty; webhook refused")
            return False
        return hmac.compare_digest(given.encode(), expected.encode())

    def blueprint(self, on_new_message: Handler) -> Blueprint:
        self._on_new_message = on_new_message
        bp = Blueprint("telegram_webhook", __name__)

        @bp.listener("after_server_start")
        async def _start(app: Any, loop: Any) -> None:
            await self.start()

        @bp.listener("before_server_stop")
        async def _stop(app: Any, loop: Any) -> None:
            await self.stop()

        @bp.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok", "running": self.application is not None})

        @bp.route("/webhook", methods=["POST"])
        async def webhook(request: Request) -> HTTPResponse:
            if not self._secret_ok(request):
                return response.text("forbidden", status=403)
            if self.application is None:
                return response.text("telegram channel not running", status=503)
            if len(request.body or b"") > MAX_BODY_BYTES:
                return response.text("too large", status=413)
            try:
                update = Update.de_json(request.json, self.application.bot)
            except Exception as error:  # malformed JSON or not an Update
                logger.warning("telegram: unreadable update refused (%s)", error)
                return response.text("bad update", status=400)
            if update is None:
                return response.text("bad update", status=400)
            await self.application.process_update(update)
            return response.text("ok")

        return bp

    async def handle(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Process one update exactly once (both webhook and polling come here)."""
        if not await self.store.claim(f"telegram:update:{update.update_id}", "1", DEDUPE_TTL):
            logger.info("telegram: update %s already processed", update.update_id)
            return
        inbound = translate(update, self.texts)
        if inbound is None:
            return
        bot = context.bot
        if isinstance(inbound, Button):
            # Always answer the query: the citizen's button stops spinning.
            await _quietly(bot.answer_callback_query(inbound.callback_query_id))
            payload = await self._payload(inbound.data)
            if payload is None:
                inbound = Say(inbound.chat_id, self.texts.button_expired)
            else:
                display = {"display": inbound.title} if inbound.title else {}
                inbound = ToBot(inbound.chat_id, payload, display)
        if isinstance(inbound, Say):
            await bot.send_message(chat_id=inbound.chat_id, text=inbound.text)
            return
        await _quietly(bot.send_chat_action(chat_id=inbound.chat_id, action=ChatAction.TYPING))
        assert self._on_new_message is not None
        message = UserMessage(
            cap(inbound.text),
            TelegramOutput(self),
            sender_id(self.name(), inbound.chat_id),
            input_channel=self.name(),
            metadata=inbound.metadata,
        )
        try:
            await self._on_new_message(message)
        except Exception:
            logger.exception("telegram: the bot failed on update %s", update.update_id)
            await _quietly(bot.send_message(chat_id=inbound.chat_id,
                                            text=self.texts.service_error))

    # -- buttons ---------------------------------------------------------------------------
    async def keyboard(self, buttons: list[dict[str, Any]]) -> InlineKeyboardMarkup:
        """One button per row; payloads over 64 bytes are stored and referenced."""
        rows = []
        for button in buttons:
            title = str(button.get("title") or button.get("payload") or "")
            payload = str(button.get("payload") or title)
            data = payload
            if len(payload.encode()) > CALLBACK_DATA_BYTES or payload.startswith(STORED_PAYLOAD):
                data = STORED_PAYLOAD + secrets.token_urlsafe(12)
                await self.store.set(f"telegram:button:{data}", payload, BUTTON_TTL)
            rows.append([InlineKeyboardButton(title, callback_data=data)])
        return InlineKeyboardMarkup(rows)

    async def _payload(self, data: str) -> str | None:
        if data.startswith(STORED_PAYLOAD):
            return await self.store.get(f"telegram:button:{data}")
        return data or None


async def _quietly(call: Awaitable[Any]) -> None:
    """Best-effort API calls (typing, callback answers) never fail a turn."""
    try:
        await call
    except TelegramError as error:
        logger.info("telegram: best-effort call failed (%s)", error)
