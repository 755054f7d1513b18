"""WeChat Official Account (微信公众号) channel for Rasa.

Declared in ``credentials.yml`` as ``connectors.wechat.WeChatInput:``; serves
``/webhooks/wechat/webhook``. See ``docs/wechat.md``.
"""

from connectors.wechat.channel import WeChatInput, WeChatOutput

__all__ = ["WeChatInput", "WeChatOutput"]
