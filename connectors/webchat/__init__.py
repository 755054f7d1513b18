"""Web chat channel (socket.io) and the embeddable widget.

Declared in ``credentials.yml`` as ``connectors.webchat.WebChatInput:``; serves
the socket.io endpoint ``/socket.io``, ``/webhooks/webchat/history`` and the
widget under ``/webchat/``. See ``docs/webchat.md``.
"""

from connectors.webchat.channel import WebChatInput, WebChatOutput

__all__ = ["WebChatInput", "WebChatOutput"]
