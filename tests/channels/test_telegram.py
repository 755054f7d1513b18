"""The Telegram channel end to end: real Bot API update JSON posted to the running server
(``citizenbot run``, real model and actions), answers read from the recording Bot API.

The fast tests at the end translate updates without a server.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from telegram import Bot, Update

from bot.settings import load_settings
from bot.tickets import TicketStore
from connectors.state import MemoryStore
from connectors.telegram.channel import TelegramInput
from connectors.telegram.inbound import STORED_PAYLOAD, Button, Say, ToBot, translate
from connectors.telegram.texts import default_texts
from tests.channels.telegram_fixtures import (
    SECRET,
    TOKEN,
    TelegramBot,
    callback_update,
    edited_update,
    message_update,
    new_chat,
    telegram_api,
    telegram_bot,
)
from tests.tickets.helpers import ENV_STAFF

__all__ = ["telegram_api", "telegram_bot"]  # fixtures, imported for pytest

TICKET = re.compile(r"GD\d{8}-\d{4}")
TEXTS = default_texts()
STICKER = {"file_id": "CAACAgIAAx", "file_unique_id": "AgADxx", "width": 512, "height": 512,
           "is_animated": False, "is_video": False, "type": "regular"}
PHOTO = [{"file_id": "AgACAgUAAx", "file_unique_id": "AQADyy", "width": 90, "height": 60,
          "file_size": 1200}]


@pytest.mark.stack
class TestWebhook:
    def test_wrong_or_missing_secret_is_refused(self, telegram_bot: TelegramBot) -> None:
        chat = new_chat()
        for secret in ("wrong-secret", None, ""):
            response = telegram_bot.post(message_update(chat, text="你好"), secret=secret)
            assert response.status_code == 403
        assert telegram_bot.api.of("sendMessage", chat) == []
        assert telegram_bot.api.of("sendChatAction", chat) == []

    def test_text_is_answered_with_typing_and_inline_buttons(
        self, telegram_bot: TelegramBot
    ) -> None:
        chat = new_chat()
        texts = telegram_bot.send(message_update(chat, text="你好"))
        assert texts and "12345" in texts[0]
        assert telegram_bot.api.of("sendChatAction", chat)[0].params["action"] == "typing"
        markup = telegram_bot.api.of("sendMessage", chat)[-1].params["reply_markup"]
        titles = [row[0]["text"] for row in markup["inline_keyboard"]]
        assert "我要投诉" in titles

    def test_complaint_with_location_and_button(self, telegram_bot: TelegramBot) -> None:
        chat = new_chat()
        asked = "\n".join(telegram_bot.send(message_update(
            chat, text="我要投诉小区楼下烧烤店每天半夜还在营业，油烟和噪音很大")))
        assert "哪里" in asked
        # the place as a shared location: coordinates become the place text
        asked = "\n".join(telegram_bot.send(message_update(
            chat, location={"latitude": 31.230416, "longitude": 121.473701})))
        assert "时候" in asked
        asked = "\n".join(telegram_bot.send(message_update(chat, text="每天晚上十二点以后")))
        assert "手机号" in asked
        # "不留电话" is an inline button: press it (callback_query)
        phone_question = telegram_bot.api.of("sendMessage", chat)[-1]
        keyboard = phone_question.params["reply_markup"]["inline_keyboard"]
        data = next(row[0]["callback_data"] for row in keyboard if row[0]["text"] == "不留电话")
        bot_message = {"message_id": 1, "date": 0, "chat": {"id": chat, "type": "private"},
                       "text": phone_question.params["text"],
                       "reply_markup": phone_question.params["reply_markup"]}
        summary = "\n".join(telegram_bot.send(callback_update(chat, data, bot_message)))
        assert telegram_bot.api.of("answerCallbackQuery")  # the button stopped spinning
        assert "31.23042" in summary and "确认" in summary
        done = "\n".join(telegram_bot.send(message_update(chat, text="确认")))
        assert TICKET.search(done), done

    def test_edited_message_gets_a_polite_note(self, telegram_bot: TelegramBot) -> None:
        chat = new_chat()
        assert telegram_bot.send(edited_update(chat, "我要投诉噪音")) == [TEXTS.edited]
        assert telegram_bot.api.of("sendChatAction", chat) == []  # the bot was not asked

    @pytest.mark.parametrize("fields", [
        {"sticker": STICKER},
        {"photo": PHOTO},
        {"voice": {"file_id": "v", "file_unique_id": "v", "duration": 3}},
        {"contact": {"phone_number": "+8613800138000", "first_name": "张"}},
    ], ids=["sticker", "photo-without-caption", "voice", "contact"])
    def test_unsupported_types_get_please_send_text(
        self, telegram_bot: TelegramBot, fields: dict[str, Any]
    ) -> None:
        chat = new_chat()
        assert telegram_bot.send(message_update(chat, **fields)) == [TEXTS.please_send_text]

    def test_repeated_update_is_processed_once(self, telegram_bot: TelegramBot) -> None:
        chat = new_chat()
        update = message_update(chat, text="你好")
        first = telegram_bot.send(update)
        assert first
        # Telegram resends; also two copies at once
        assert telegram_bot.send(update) == []

        async def twice() -> list[int]:
            async with httpx.AsyncClient(timeout=60) as client:
                again = message_update(chat, text="你好")
                headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
                responses = await asyncio.gather(*[
                    client.post(telegram_bot.url, json=again, headers=headers) for _ in range(2)])
            return [r.status_code for r in responses]

        before = len(telegram_bot.api.of("sendChatAction", chat))
        assert asyncio.run(twice()) == [200, 200]
        assert len(telegram_bot.api.of("sendChatAction", chat)) == before + 1

    def test_flood_control_retry_after_is_respected(self, telegram_bot: TelegramBot) -> None:
        chat = new_chat()
        telegram_bot.api.flood.append(1)
        texts = telegram_bot.send(message_update(chat, text="你好"))
        # the refused attempt and the retry after 1 s, same text
        assert len(texts) >= 2 and texts[0] == texts[1]

    def test_bad_body_is_refused(self, telegram_bot: TelegramBot) -> None:
        response = httpx.post(telegram_bot.url, content=b"not json", timeout=10,
                                            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
        assert response.status_code == 400

    def test_console_notification_reaches_the_chat(self, telegram_bot: TelegramBot) -> None:
        chat = new_chat()
        done = ""
        for text in ("我要投诉小区楼下烧烤店每天半夜还在营业，油烟和噪音很大",
                     "幸福路12号幸福小区", "每天晚上十二点以后", "不留", "确认"):
            done = "\n".join(telegram_bot.send(message_update(chat, text=text)))
        number = TICKET.search(done)
        assert number, done
        # staff reply in the ticket store, as the console does, then notify like the console
        store = TicketStore(telegram_bot.stack.database_url,
                            settings=load_settings(telegram_bot.stack.env))
        store.start(number[0], ENV_STAFF)
        store.reply(number[0], "已联系城管执法，烧烤店已停止夜间营业。", ENV_STAFF)
        store.dispose()
        before = len(telegram_bot.api.texts(chat))
        response = httpx.post(
            f"{telegram_bot.stack.rasa_url}/conversations/telegram:{chat}/trigger_intent",
            params={"output_channel": "telegram", "token": "test-token"},
            json={"name": "EXTERNAL_ticket_update", "entities": {"ticket_number": number[0]}},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        notice = "\n".join(telegram_bot.api.texts(chat)[before:])
        assert number[0] in notice and "停止夜间营业" in notice


# -- fast: translation and buttons without a server ------------------------------------------


def _update(data: dict[str, Any]) -> Update:
    bot = Bot(TOKEN)
    update = Update.de_json(data, bot)
    assert update is not None
    return update


def test_commands_and_typed_intents() -> None:
    chat = new_chat()
    assert translate(_update(message_update(chat, text="/start")), TEXTS) == ToBot(chat, "/greet")
    typed = translate(_update(message_update(chat, text='/inform{"phone":"1"}')), TEXTS)
    assert isinstance(typed, ToBot) and not typed.text.startswith("/")


def test_location_venue_caption_and_ignored_updates() -> None:
    chat = new_chat()
    venue = {"location": {"latitude": 31.2, "longitude": 121.4}, "title": "幸福小区",
             "address": "幸福路12号"}
    found = translate(_update(message_update(chat, venue=venue,
                                             location=venue["location"])), TEXTS)
    assert isinstance(found, ToBot) and found.text == "幸福小区 幸福路12号"
    assert found.metadata["location"]["latitude"] == 31.2
    captioned = translate(_update(message_update(chat, photo=PHOTO, caption="门口堆满垃圾")), TEXTS)
    assert isinstance(captioned, ToBot)
    assert captioned.metadata["attachments"][0]["file_id"] == PHOTO[0]["file_id"]
    assert isinstance(translate(_update(message_update(chat, sticker=STICKER)), TEXTS), Say)
    member = {"update_id": 1, "my_chat_member": {
        "chat": {"id": chat, "type": "private"}, "from": {"id": chat, "is_bot": False,
                                                          "first_name": "Z"},
        "date": 0, "old_chat_member": {"status": "member", "user": {"id": 1, "is_bot": True,
                                                                    "first_name": "B"}},
        "new_chat_member": {"status": "kicked", "until_date": 0,
                            "user": {"id": 1, "is_bot": True, "first_name": "B"}}}}
    assert translate(_update(member), TEXTS) is None


async def test_long_button_payloads_are_stored() -> None:
    channel = TelegramInput(store=MemoryStore())
    payload = '/inform{"case_place": "幸福路12号幸福小区东门的烧烤店"}'
    assert len(payload.encode()) > 64
    markup = await channel.keyboard([{"title": "就是这里", "payload": payload},
                                     {"title": "取消", "payload": "/cancel"}])
    data = [row[0].callback_data for row in markup.inline_keyboard]
    assert data[1] == "/cancel" and data[0].startswith(STORED_PAYLOAD)
    assert len(data[0].encode()) <= 64
    assert await channel._payload(data[0]) == payload
    assert await channel._payload(STORED_PAYLOAD + "forgotten") is None
    chat = new_chat()
    pressed = translate(_update(callback_update(chat, data[0], {
        "message_id": 1, "date": 0, "chat": {"id": chat, "type": "private"}, "text": "?",
        "reply_markup": markup.to_dict()})), TEXTS)
    assert isinstance(pressed, Button) and pressed.title == "就是这里"


async def test_polling_mode_feeds_the_same_handler(tmp_path: Any) -> None:
    """``citizenbot run --telegram-polling``: getUpdates instead of the webhook (no Rasa)."""
    from bot.settings import Settings
    from tests.telegram_api import TelegramApi

    api = TelegramApi(token=TOKEN).start()
    received: list[Any] = []

    async def bot(message: Any) -> None:
        received.append(message)
        await message.output_channel.send_text_message(message.sender_id, f"收到：{message.text}")

    settings = Settings(var_dir=tmp_path, telegram_token=TOKEN, telegram_api_base=api.base_url,
                        telegram_polling=True)
    channel = TelegramInput(settings=settings, store=MemoryStore())
    channel.blueprint(bot)
    await channel.start()
    try:
        assert channel.application is not None
        chat = new_chat()
        update = message_update(chat, text="你好")
        api.updates.extend([update, update])  # the same update twice: processed once
        for _ in range(100):
            if api.of("sendMessage", chat):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        assert [m.text for m in received] == ["你好"]
        assert api.texts(chat) == ["收到：你好"]
        assert received[0].input_channel == "telegram"
        assert received[0].sender_id == f"telegram:{chat}"
    finally:
        await channel.stop()
        api.stop()
