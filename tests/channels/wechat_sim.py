"""What WeChat's servers send: real callback XML, signed and encrypted with wechatpy.

:class:`WeChatServer` plays the WeChat side of the webhook for one Official
Account: it builds the XML shapes WeChat posts (text, voice, location, image,
events), signs them with wechatpy's signer, encrypts them with wechatpy's
``PrpCrypto`` for compatible/safe mode, and opens the (possibly encrypted)
passive reply the same way a WeChat client would.
"""

from __future__ import annotations

import itertools
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import xmltodict
from wechatpy.crypto import PrpCrypto, WeChatCrypto
from wechatpy.utils import WeChatSigner, to_text

Mode = Literal["plain", "compatible", "safe"]

_ids = itertools.count(int(time.time() * 1000) % 10**12 * 1000)


def new_msg_id() -> int:
    return next(_ids)


def new_openid() -> str:
    """OpenIDs look like ``oXYZ…`` (28 characters)."""
    return "o" + secrets.token_urlsafe(21)[:27]


def sign(*parts: str) -> str:
    signer = WeChatSigner()
    signer.add_data(*parts)
    return str(signer.signature)


def _cdata(value: str) -> str:
    return f"<![CDATA[{value}]]>"


def message_xml(kind: str, openid: str, account: str = "gh_citizenbot01",
                create_time: int | None = None, msg_id: int | None = None,
                **fields: Any) -> str:
    """One callback message as WeChat writes it (field order and CDATA as in the docs)."""
    created = create_time if create_time is not None else int(time.time())
    head = (f"<ToUserName>{_cdata(account)}</ToUserName>"
            f"<FromUserName>{_cdata(openid)}</FromUserName>"
            f"<CreateTime>{created}</CreateTime>")
    if kind == "text":
        body = (f"<MsgType>{_cdata('text')}</MsgType>"
                f"<Content>{_cdata(fields['content'])}</Content>")
    elif kind == "voice":
        body = (f"<MsgType>{_cdata('voice')}</MsgType>"
                f"<MediaId>{_cdata(fields.get('media_id', 'voice-media-1'))}</MediaId>"
                f"<Format>{_cdata('amr')}</Format>")
        if fields.get("recognition") is not None:
            body += f"<Recognition>{_cdata(fields['recognition'])}</Recognition>"
    elif kind == "location":
        body = (f"<MsgType>{_cdata('location')}</MsgType>"
                f"<Location_X>{fields['lat']}</Location_X>"
                f"<Location_Y>{fields['lon']}</Location_Y>"
                f"<Scale>15</Scale><Label>{_cdata(fields.get('label', ''))}</Label>")
    elif kind == "image":
        body = (f"<MsgType>{_cdata('image')}</MsgType>"
                f"<PicUrl>{_cdata(fields['url'])}</PicUrl>"
                f"<MediaId>{_cdata(fields['media_id'])}</MediaId>")
    elif kind == "video":
        body = (f"<MsgType>{_cdata('video')}</MsgType>"
                f"<MediaId>{_cdata('video-media')}</MediaId>"
                f"<ThumbMediaId>{_cdata('thumb')}</ThumbMediaId>")
    elif kind == "event":
        body = (f"<MsgType>{_cdata('event')}</MsgType>"
                f"<Event>{_cdata(fields['event'])}</Event>")
        if "key" in fields:
            body += f"<EventKey>{_cdata(fields['key'])}</EventKey>"
        return f"<xml>{head}{body}</xml>"
    else:
        raise ValueError(kind)
    message_id = msg_id if msg_id is not None else new_msg_id()
    return f"<xml>{head}{body}<MsgId>{message_id}</MsgId></xml>"


@dataclass
class Reply:
    """What the webhook answered, opened like WeChat would."""

    status: int
    raw: str
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str | None:
        """The passive reply's text, or None for ``success``/empty."""
        return self.fields.get("Content")

    @property
    def is_success(self) -> bool:
        return self.status == 200 and self.raw.strip() in ("success", "")


@dataclass
class WeChatServer:
    """Signs, encrypts and posts callbacks for one account to ``webhook_url``."""

    webhook_url: str
    token: str
    appid: str
    aes_key: str

    @property
    def crypto(self) -> WeChatCrypto:
        return WeChatCrypto(self.token, self.aes_key, self.appid)

    def signed_query(self, timestamp: str | None = None, nonce: str | None = None,
                     ) -> dict[str, str]:
        timestamp = timestamp or str(int(time.time()))
        nonce = nonce or secrets.token_hex(5)
        return {"signature": sign(self.token, timestamp, nonce),
                "timestamp": timestamp, "nonce": nonce}

    def envelope(self, xml: str, mode: Mode, *, timestamp: str | None = None,
                 nonce: str | None = None) -> tuple[dict[str, str], bytes]:
        """(query, body) of one POST in ``mode``; a fresh timestamp and a random
        nonce unless given (as WeChat signs each callback)."""
        query = self.signed_query(timestamp, nonce)
        if mode == "plain":
            return query, xml.encode("utf-8")
        encrypt = to_text(PrpCrypto(self.crypto.key).encrypt(xml, self.appid))
        query.update(encrypt_type="aes", msg_signature=sign(
            self.token, query["timestamp"], query["nonce"], encrypt))
        parsed = xmltodict.parse(xml)["xml"]
        if mode == "safe":
            body = (f"<xml><ToUserName>{_cdata(parsed['ToUserName'])}</ToUserName>"
                    f"<Encrypt>{_cdata(encrypt)}</Encrypt></xml>")
        else:  # compatible: the plaintext fields and the ciphertext side by side
            body = xml.replace("</xml>", f"<Encrypt>{_cdata(encrypt)}</Encrypt></xml>")
        return query, body.encode("utf-8")

    def open_reply(self, response: httpx.Response, query: dict[str, str]) -> Reply:
        return self.open_raw_reply(response.status_code, response.text, query)

    def open_raw_reply(self, status: int, raw: str, query: dict[str, str]) -> Reply:
        """The reply to one POST as WeChat reads it: its signature checked, decrypted."""
        reply = Reply(status, raw)
        if status != 200 or raw.strip() in ("success", ""):
            return reply
        outer = xmltodict.parse(raw)["xml"]
        if "Encrypt" in outer:
            # The reply's own signature must verify, as WeChat checks it.
            assert outer["MsgSignature"] == sign(
                self.token, outer["TimeStamp"], outer["Nonce"], outer["Encrypt"])
            assert outer["Nonce"] == query["nonce"]
            plain = self.crypto.decrypt_message(
                raw, outer["MsgSignature"], outer["TimeStamp"], outer["Nonce"])
            reply.fields = dict(xmltodict.parse(to_text(plain))["xml"])
            reply.fields["_encrypted"] = True
        else:
            reply.fields = dict(outer)
        return reply

    def post_xml(self, xml: str, mode: Mode = "plain", *, client: httpx.Client | None = None,
                 timeout: float = 30.0) -> Reply:
        query, body = self.envelope(xml, mode)
        return self.post_raw(query, body, client=client, timeout=timeout)

    def post_raw(self, query: dict[str, str], body: bytes, *,
                 client: httpx.Client | None = None, timeout: float = 30.0) -> Reply:
        http = client or httpx
        response = http.post(self.webhook_url, params=query, content=body,
                             headers={"Content-Type": "text/xml"}, timeout=timeout)
        return self.open_reply(response, query)

    def send(self, kind: str, openid: str, mode: Mode = "plain", **fields: Any) -> Reply:
        return self.post_xml(message_xml(kind, openid, **fields), mode)

    async def apost_xml(self, client: httpx.AsyncClient, xml: str, mode: Mode = "plain",
                        ) -> Reply:
        query, body = self.envelope(xml, mode)
        return await self.apost_raw(client, query, body)

    async def apost_raw(self, client: httpx.AsyncClient, query: dict[str, str], body: bytes,
                        ) -> Reply:
        response = await client.post(self.webhook_url, params=query, content=body,
                                     headers={"Content-Type": "text/xml"})
        return self.open_reply(response, query)

    async def asend(self, client: httpx.AsyncClient, kind: str, openid: str,
                    mode: Mode = "plain", **fields: Any) -> Reply:
        return await self.apost_xml(client, message_xml(kind, openid, **fields), mode)
