"""The REST channel (``POST /webhooks/rest/webhook``): development and trusted integrations.

Same URL and body as Rasa's ``RestInput`` (``{"sender": …, "message": …}``) and
the same answer (a list of bot messages), but it proves nothing about who is
speaking, so it is fenced in:

* **Who may post.** With ``REST_TOKEN`` set, every request carries
  ``Authorization: Bearer <REST_TOKEN>`` (a trusted server-side integration that
  vouches for its senders). With ``REST_JWT_SECRET`` set, a JWT signed with it
  is accepted too (Rasa's own convention for its HTTP API); a token naming a
  user (``sub``, or Rasa's ``user.username``) may speak only as that user. With
  neither, the channel is open in the default profile (a developer's machine,
  the README's ``curl`` lines) and **off** in the production profile.
* **Whose conversation.** The sender becomes ``rest:<sender>``
  (:mod:`bot.tickets.citizens`): a REST caller can never reach the
  conversation or the tickets of a WeChat, Telegram or widget user, whatever
  id it types. ``input_channel`` in the body is ignored for the same reason.
* **Size.** Bodies over 256 KB are refused; the text is cut to
  :data:`connectors.limits.MAX_MESSAGE_CHARS`.

It also passes through what Rasa's channel drops: ``metadata`` (a dict),
``message_id`` (a client that retries after an error sends the same id, and
tickets are created once per channel + sender + message id), and the
``X-Request-ID`` header (set by nginx) or a new id, so a request can be followed
through every process's logs. :mod:`connectors.rasa_hooks` moves ``metadata.message_id``
onto the ``UserMessage``.
"""

from __future__ import annotations

import hmac
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import jwt
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput as RasaRestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse, ResponseStream

from bot.settings import Settings, get_settings
from bot.tickets.citizens import is_platform_id, sender_id
from connectors.limits import cap

logger = logging.getLogger(__name__)

#: largest accepted body (a pasted 50,000-character text is cut and answered, not refused)
MAX_BODY_BYTES = 256 * 1024
#: longest sender id a client may choose
MAX_SENDER_CHARS = 128

Handler = Callable[[UserMessage], Awaitable[Any]]


class Refused(Exception):
    """A request the channel answers with ``status`` and a short English reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class RestInput(RasaRestInput):
    """``rest``: Rasa's REST channel with authentication, namespaced senders and limits."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()

    @classmethod
    def name(cls) -> str:
        return "rest"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> RestInput:
        return cls()

    # -- who may post ------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        """Unauthenticated requests are taken (development only)."""
        s = self.settings
        return not (s.rest_token or s.rest_jwt_secret) and s.deploy_profile != "production"

    @property
    def is_off(self) -> bool:
        s = self.settings
        return s.deploy_profile == "production" and not (s.rest_token or s.rest_jwt_secret)

    def authorised_user(self, request: Request) -> str | None:
        """The user a JWT names ('' for a token naming nobody); :class:`Refused` otherwise."""
        if self.is_off:
            raise Refused(403, "the REST channel is off (set REST_TOKEN or REST_JWT_SECRET)")
        if self.is_open:
            return ""
        scheme, _, given = (request.headers.get("authorization") or "").partition(" ")
        given = given.strip()
        if scheme.lower() != "bearer" or not given:
            raise Refused(401, "missing Authorization: Bearer token")
        s = self.settings
        if s.rest_token and hmac.compare_digest(given.encode(), s.rest_token.encode()):
            return ""
        if s.rest_jwt_secret:
            try:
                claims = jwt.decode(given, s.rest_jwt_secret, algorithms=[s.rest_jwt_algorithm])
            except jwt.PyJWTError as error:
                raise Refused(401, "invalid token") from error
            user = claims.get("sub") or (claims.get("user") or {}).get("username") or ""
            return str(user)
        raise Refused(401, "invalid token")

    # -- the body ----------------------------------------------------------------------
    def read(self, request: Request) -> tuple[str, str, dict[str, Any]]:
        """(sender as the client named it, text, metadata) or :class:`Refused`."""
        if len(request.body or b"") > MAX_BODY_BYTES:
            raise Refused(413, "body too large")
        try:
            body = request.json
        except Exception as error:  # sanic raises its own BadRequest on invalid JSON
            raise Refused(400, "body is not JSON") from error
        if not isinstance(body, dict):
            raise Refused(400, "body must be a JSON object")
        sender, text = body.get("sender"), body.get("message")
        if isinstance(sender, int) and not isinstance(sender, bool):
            sender = str(sender)
        if not isinstance(sender, str) or not sender.strip():
            raise Refused(400, "sender must be a non-empty string")
        if len(sender.strip()) > MAX_SENDER_CHARS:
            raise Refused(400, f"sender longer than {MAX_SENDER_CHARS} characters")
        if not is_platform_id(sender.strip()):
            raise Refused(400, "sender may hold only letters, digits and _ . @ : -")
        if not isinstance(text, str):
            raise Refused(400, "message must be a string")
        return sender.strip(), cap(text), self.get_metadata(request)

    def get_metadata(self, request: Request) -> dict[str, Any]:
        body = request.json if isinstance(request.json, dict) else {}
        given = body.get("metadata")
        metadata: dict[str, Any] = dict(given) if isinstance(given, dict) else {}
        message_id = body.get("message_id")
        if isinstance(message_id, (str, int)) and str(message_id).strip():
            metadata["message_id"] = str(message_id).strip()[:128]
        header = (request.headers.get("x-request-id") or "").strip()
        metadata["request_id"] = header[:64] if header else uuid.uuid4().hex
        return metadata

    # -- routes ------------------------------------------------------------------------
    def blueprint(self, on_new_message: Handler) -> Blueprint:
        hook = Blueprint("rest_webhook", __name__)

        @hook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "off" if self.is_off else "ok"})

        @hook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse | ResponseStream:
            try:
                user = self.authorised_user(request)
                given, text, metadata = self.read(request)
                if user and user != given:
                    raise Refused(403, "the token does not speak for this sender")
            except Refused as error:
                logger.info("rest: request refused (%s %s)", error.status, error.reason)
                return response.json({"error": error.reason}, status=error.status)
            sender = sender_id(self.name(), given)
            if request.args.get("stream", "").lower() in ("1", "true"):
                return response.stream(
                    self.stream_response(on_new_message, text, sender, self.name(), metadata),
                    content_type="text/event-stream",
                )
            collector = CollectingOutputChannel()
            try:
                await on_new_message(
                    UserMessage(text, collector, sender, input_channel=self.name(),
                                metadata=metadata)
                )
            except Exception:
                # never the text: it may hold a phone or 身份证 number
                logger.exception("rest: message %s failed", metadata.get("request_id"))
            # the client named the sender without the channel prefix; answer in its terms
            return response.json(
                [{**message, "recipient_id": given} for message in collector.messages]
            )

        return hook
