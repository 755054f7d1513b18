"""Rasa's REST channel, passing a request id, a message id and metadata through.

Rasa's ``RestInput`` drops everything but ``sender`` and ``message``. This
subclass (same name ``rest``, same URL ``/webhooks/rest/webhook``) keeps:

* ``metadata`` from the JSON body (a dict), as other channels' metadata;
* ``message_id`` from the body: a client that retries a message after an error
  sends the same id, and tickets are created once per channel + sender +
  message id (``actions.common.message_key``);
* the ``X-Request-ID`` header (set by nginx, see deploy/nginx) or a new id, so
  the request can be followed in every process's logs and on the ticket.

:mod:`connectors.ops` moves ``metadata.message_id`` onto the ``UserMessage``.
"""

from __future__ import annotations

import uuid
from typing import Any

from rasa.core.channels.rest import RestInput as RasaRestInput
from sanic.request import Request


class RestInput(RasaRestInput):
    """``rest``: Rasa's REST channel plus metadata, message id and request id."""

    @classmethod
    def name(cls) -> str:
        return "rest"

    def get_metadata(self, request: Request) -> dict[str, Any] | None:
        body = request.json if isinstance(request.json, dict) else {}
        given = body.get("metadata")
        metadata: dict[str, Any] = dict(given) if isinstance(given, dict) else {}
        message_id = body.get("message_id")
        if isinstance(message_id, (str, int)) and str(message_id).strip():
            metadata["message_id"] = str(message_id).strip()[:128]
        header = (request.headers.get("x-request-id") or "").strip()
        metadata["request_id"] = header[:64] if header else uuid.uuid4().hex
        return metadata
