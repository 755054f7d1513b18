"""The web chat channel: Rasa's socket.io protocol, made safe to persist, plus the widget.

Declared in ``credentials.yml`` as ``connectors.webchat.WebChatInput:`` with the
usual socket.io options (``user_message_evt``, ``bot_message_evt``,
``session_persistence``). It speaks exactly the protocol of Rasa's own
``socketio`` channel — ``session_request`` → ``session_confirm``, then
``user_uttered`` / ``bot_uttered`` — so the widely used ``rasa-webchat`` client
works against it as well as our widget (``connectors/webchat/src``).

What it changes, and why:

* **Rooms actually joined.** With python-socketio 5.x ``AsyncServer.enter_room``
  is a coroutine; Rasa 3.6's channel calls it without ``await``, so with
  ``session_persistence`` no socket ever joins its session's room and the bot's
  answers (sent to the room) reach nobody. Here it is awaited.
* **Session ids are secrets.** A session id is the conversation's sender id and
  the key to its history, so only server-made ``uuid4().hex`` values are
  accepted; anything else (``"alice"``, a Telegram chat id) gets a fresh id.
* **Client metadata is filtered.** Actions trust ``metadata["attachments"]``
  from channels that verified them; a browser may only pass ``display`` (a
  button's title, for the history) and ``language``.
* **Typing indicator and other tabs.** ``bot_typing`` events bracket each turn;
  a citizen's message is echoed (``user_echo``) to their other tabs.
* **History and static files.** ``POST /webhooks/webchat/history`` returns a
  session's messages from the tracker store (see :mod:`connectors.webchat.history`);
  ``/webchat/widget.js`` and ``/webchat/demo.html`` are the built widget.

Rasa's socket.io channel keeps its sockets in the process: run one Sanic worker
per server and put several servers behind sticky sessions.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import rasa.core.channels.channel
from rasa.core.channels.channel import OutputChannel, UserMessage
from rasa.core.channels.socketio import SocketBlueprint, SocketIOInput, SocketIOOutput
from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse
from socketio import AsyncServer

from bot.tickets.citizens import recipient, sender_id
from connectors.limits import cap
from connectors.webchat.history import HISTORY_LIMIT, conversation, is_session_id

logger = logging.getLogger(__name__)

#: the built widget (committed, so ``make run`` needs no npm)
DIST = Path(__file__).resolve().parent / "dist"
#: files the static route serves, and their content types; nothing else is reachable
STATIC_FILES = {
    "widget.js": "application/javascript; charset=utf-8",
    "demo.html": "text/html; charset=utf-8",
}
#: metadata keys a browser may set
CLIENT_METADATA_KEYS = ("display", "language")

Handler = Callable[[UserMessage], Awaitable[Any]]


class WebChatOutput(SocketIOOutput):
    """Rasa's socket.io output under our channel's name, with a working custom payload.

    Rasa's ``send_custom_json`` passes the payload's keys to ``emit`` as keyword
    arguments, which loses it; here it arrives as ``{"custom": ...}`` like the
    other message kinds.
    """

    @classmethod
    def name(cls) -> str:
        return "webchat"

    async def send_custom_json(
        self, recipient_id: str, json_message: dict[str, Any], **kwargs: Any
    ) -> None:
        await self._send_message(recipient_id, {"custom": json_message})

    async def _send_message(self, socket_id: str, response: Any) -> None:
        # The conversation is ``webchat:<session>``; the socket.io room is the session.
        await super()._send_message(recipient("webchat", socket_id), response)


class WebChatBlueprint(SocketBlueprint):
    """Attaches the socket.io server and the widget's static files to the Rasa app.

    The static files live outside the channel's ``/webhooks/webchat`` prefix so
    the embed line reads ``<script src="https://HOST/webchat/widget.js">``.
    """

    def register(self, app: Sanic, options: dict[str, Any]) -> None:
        super().register(app, options)

        async def static(_: Request, filename: str) -> HTTPResponse:
            content_type = STATIC_FILES.get(filename)
            path = DIST / filename
            if content_type is None or not path.is_file():
                return response.text("not found", status=404)
            return await response.file(
                path,
                mime_type=content_type,
                headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
            )

        app.add_route(static, "/webchat/<filename>", methods=["GET"], name="webchat_static")


class WebChatInput(SocketIOInput):
    """Rasa's socket.io channel with secret session ids, history and the widget."""

    @classmethod
    def name(cls) -> str:
        return "webchat"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> WebChatInput:
        credentials = credentials or {}
        return cls(
            user_message_evt=credentials.get("user_message_evt", "user_uttered"),
            bot_message_evt=credentials.get("bot_message_evt", "bot_uttered"),
            namespace=credentials.get("namespace"),
            session_persistence=credentials.get("session_persistence", True),
            socketio_path=credentials.get("socketio_path", "/socket.io"),
            jwt_key=credentials.get("jwt_key"),
            jwt_method=credentials.get("jwt_method", "HS256"),
            metadata_key=credentials.get("metadata_key", "metadata"),
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: socket id -> the session it confirmed (one process; see the module docstring)
        self._sessions: dict[str, str] = {}

    def get_output_channel(self) -> OutputChannel | None:
        """For ``trigger_intent?output_channel=latest``: console notifications."""
        if self.sio is None:
            return None
        return WebChatOutput(self.sio, self.bot_message_evt)

    # -- the socket.io side -----------------------------------------------------------
    def _authorised(self, auth: dict[str, Any] | None) -> bool:
        if not self.jwt_key:
            return True
        token = (auth or {}).get("token")
        if not token:
            return False
        payload = rasa.core.channels.channel.decode_bearer_token(
            token, self.jwt_key, self.jwt_algorithm
        )
        return bool(payload)

    async def _join(self, sio: AsyncServer, sid: str, session_id: str) -> None:
        previous = self._sessions.get(sid)
        if previous == session_id:
            return
        if previous is not None:
            await sio.leave_room(sid, previous, namespace=self.namespace)
        await sio.enter_room(sid, session_id, namespace=self.namespace)
        self._sessions[sid] = session_id

    def _sender(self, sid: str, data: dict[str, Any]) -> str | None:
        """The conversation a message belongs to, or None to drop it."""
        if not self.session_persistence:
            return sid
        claimed = data.get("session_id")
        if is_session_id(claimed):
            return str(claimed)
        return self._sessions.get(sid)

    @staticmethod
    def _metadata(raw: Any) -> dict[str, Any]:
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError:
                return {}
        if not isinstance(raw, dict):
            return {}
        return {
            key: str(raw[key])[:200]
            for key in CLIENT_METADATA_KEYS
            if isinstance(raw.get(key), (str, int, float))
        }

    def blueprint(self, on_new_message: Handler) -> WebChatBlueprint:
        """The socket.io server, the history endpoint and the static widget files."""
        sio = AsyncServer(async_mode="sanic", cors_allowed_origins=[])
        bp = WebChatBlueprint(sio, self.socketio_path, "webchat_webhook", __name__)
        self.sio = sio
        namespace = self.namespace

        @bp.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @bp.route("/history", methods=["POST"])
        async def history(request: Request) -> HTTPResponse:
            # POST, not GET: the session id is a secret and stays out of access logs.
            body = request.json if isinstance(request.json, dict) else {}
            session_id = body.get("session_id")
            if not is_session_id(session_id):
                return response.json({"error": "invalid session_id"}, status=400)
            agent = getattr(request.app.ctx, "agent", None)
            tracker = None
            if agent is not None and agent.tracker_store is not None:
                tracker = await agent.tracker_store.retrieve(sender_id(self.name(), session_id))
            events = [event.as_dict() for event in tracker.events] if tracker else []
            messages = conversation(events, self.name(), HISTORY_LIMIT)
            return response.json({"session_id": session_id, "messages": messages})

        @sio.on("connect", namespace=namespace)
        async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
            return self._authorised(auth if isinstance(auth, dict) else None)

        @sio.on("disconnect", namespace=namespace)
        async def disconnect(sid: str, *_: Any) -> None:
            self._sessions.pop(sid, None)

        @sio.on("session_request", namespace=namespace)
        async def session_request(sid: str, data: Any = None) -> None:
            requested = data.get("session_id") if isinstance(data, dict) else None
            session_id = requested if is_session_id(requested) else uuid.uuid4().hex
            if self.session_persistence:
                await self._join(sio, sid, session_id)
            await sio.emit("session_confirm", session_id, room=sid, namespace=namespace)

        @sio.on(self.user_message_evt, namespace=namespace)
        async def handle_message(sid: str, data: Any = None) -> None:
            if not isinstance(data, dict):
                return
            sender = self._sender(sid, data)
            if sender is None:
                logger.warning("webchat: message without a valid session_id ignored")
                return
            if self.session_persistence:
                await self._join(sio, sid, sender)
            text = cap(str(data.get("message") or ""))
            if not text.strip():
                return
            metadata = self._metadata(data.get(self.metadata_key))
            room = sender if self.session_persistence else sid
            await sio.emit(
                "user_echo",
                {"text": metadata.get("display", text)},
                room=room,
                skip_sid=sid,
                namespace=namespace,
            )
            await sio.emit("bot_typing", {"typing": True}, room=room, namespace=namespace)
            try:
                await on_new_message(
                    UserMessage(
                        text,
                        WebChatOutput(sio, self.bot_message_evt),
                        sender_id(self.name(), sender),
                        input_channel=self.name(),
                        metadata=metadata,
                    )
                )
            finally:
                await sio.emit("bot_typing", {"typing": False}, room=room, namespace=namespace)

        return bp
