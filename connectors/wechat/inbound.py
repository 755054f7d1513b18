"""Check, decrypt and parse what WeChat's servers POST to the webhook.

Everything here runs before anything reaches Rasa, so a request that fails a
check changes nothing. The order is cheap-first: size, signature, XML shape,
then decryption and parsing.

Why the XML is safe to parse: wechatpy parses with xmltodict on expat, and
xmltodict (``disable_entities=True``, its default) raises on any entity
declaration, while expat never fetches external entities unless asked to. We
still refuse any DOCTYPE outright: WeChat never sends one, so a document with
one is hostile or broken, and refusing it does not depend on library defaults.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from xml.parsers.expat import ExpatError

import xmltodict
from wechatpy import parse_message
from wechatpy.crypto import PrpCrypto, WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException
from wechatpy.messages import BaseMessage
from wechatpy.replies import TextReply
from wechatpy.utils import WeChatSigner

#: bodies above this are refused before they are read further (WeChat's are < 10 KB)
MAX_BODY_BYTES = 256 * 1024

_FORBIDDEN = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


class Rejected(Exception):
    """A request the webhook refuses; ``status`` is the HTTP answer (4xx)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Inbound:
    """A verified message and how to answer it (encrypted when it came encrypted)."""

    message: BaseMessage
    encrypted: bool
    nonce: str


def sign(*parts: str) -> str:
    """WeChat's SHA1 signature over the sorted parts (token, timestamp, nonce[, encrypt])."""
    signer = WeChatSigner()
    signer.add_data(*parts)
    return str(signer.signature)


def _same(expected: str, given: str | None) -> bool:
    # bytes: compare_digest refuses non-ASCII str (a forged signature must be a 403, not a 500)
    return bool(given) and hmac.compare_digest(
        expected.encode(), str(given).encode("utf-8", "surrogatepass")
    )


class Verifier:
    """Verifies and opens WeChat callbacks for one Official Account.

    ``token`` signs every request; ``aes_key`` (43 characters), when set,
    enables compatible and safe mode.
    """

    def __init__(self, token: str, appid: str, aes_key: str = "") -> None:
        self.token = token
        self.appid = appid
        self.crypto: WeChatCrypto | None = None
        if aes_key:
            try:
                key = base64.b64decode(aes_key + "=", validate=True)
            except binascii.Error as error:
                raise ValueError("WECHAT_AES_KEY is not valid base64") from error
            if len(aes_key) != 43 or len(key) != 32:
                raise ValueError("WECHAT_AES_KEY must be the 43-character EncodingAESKey")
            self.crypto = WeChatCrypto(token, aes_key, appid)

    # -- signatures --------------------------------------------------------------
    def signed(self, args: Mapping[str, str]) -> bool:
        """Is ``signature`` right for ``timestamp`` and ``nonce``? Constant-time compare."""
        timestamp, nonce = args.get("timestamp") or "", args.get("nonce") or ""
        if not self.token or not timestamp or not nonce:
            return False
        return _same(sign(self.token, timestamp, nonce), args.get("signature"))

    def echo(self, args: Mapping[str, str]) -> str:
        """Answer of the server-verification GET: the ``echostr`` when signed."""
        echostr = args.get("echostr")
        if not echostr or not self.signed(args):
            raise Rejected(403, "bad signature")
        return echostr

    # -- messages ----------------------------------------------------------------
    def open(self, args: Mapping[str, str], body: bytes) -> Inbound:
        """Verify and parse one POSTed message, or raise :class:`Rejected`."""
        if len(body) > MAX_BODY_BYTES:
            raise Rejected(413, "body too large")
        if not self.signed(args):
            raise Rejected(403, "bad signature")
        xml = _checked_xml(body)
        encrypt_type = (args.get("encrypt_type") or "raw").lower()
        nonce = args.get("nonce") or ""
        if encrypt_type == "raw":
            return Inbound(_parse(xml), encrypted=False, nonce=nonce)
        if encrypt_type != "aes":
            raise Rejected(400, "unknown encrypt_type")
        envelope = _envelope(xml)
        encrypt = envelope.get("Encrypt")
        if self.crypto is None or not isinstance(encrypt, str) or not encrypt:
            # Compatible mode still carries the plaintext fields; without a key
            # (or without ciphertext) they are all we can read.
            if "MsgType" not in envelope:
                raise Rejected(400, "encrypted message but no WECHAT_AES_KEY")
            return Inbound(_parse(xml), encrypted=False, nonce=nonce)
        expected = sign(self.token, args.get("timestamp") or "", nonce, encrypt)
        if not _same(expected, args.get("msg_signature")):
            raise Rejected(403, "bad msg_signature")
        try:
            plain = PrpCrypto(self.crypto.key).decrypt(encrypt, self.appid)
        except InvalidAppIdException as error:
            raise Rejected(403, "message for another AppID") from error
        except Exception as error:  # bad padding/base64/UTF-8: not from WeChat
            raise Rejected(400, "cannot decrypt") from error
        inner = _checked_xml(plain if isinstance(plain, bytes) else str(plain).encode("utf-8"))
        return Inbound(_parse(inner), encrypted=True, nonce=nonce)

    def reply(self, inbound: Inbound, content: str) -> str:
        """The passive reply XML, encrypted when the message was."""
        xml = str(TextReply(message=inbound.message, content=content).render())
        if inbound.encrypted and self.crypto is not None:
            return str(self.crypto.encrypt_message(xml, inbound.nonce, str(int(time.time()))))
        return xml


def _checked_xml(body: bytes) -> str:
    if _FORBIDDEN.search(body):
        raise Rejected(400, "DOCTYPE/ENTITY not allowed")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Rejected(400, "body is not UTF-8") from error


def _envelope(xml: str) -> dict[str, object]:
    """The outer ``<xml>`` of an encrypted callback (it has no MsgType in safe mode)."""
    try:
        document = xmltodict.parse(xml)
    except (ExpatError, ValueError) as error:
        raise Rejected(400, f"malformed XML ({type(error).__name__})") from error
    envelope = document.get("xml") if isinstance(document, dict) else None
    if not isinstance(envelope, dict):
        raise Rejected(400, "not a WeChat message")
    return envelope


def _parse(xml: str) -> BaseMessage:
    """wechatpy's parser, with every way it can fail mapped to a 400."""
    if not xml.strip():
        raise Rejected(400, "empty body")
    try:
        message = parse_message(xml)
        # Touch the typed fields now: wechatpy converts lazily, and a bad
        # MsgId or CreateTime must fail here rather than in the middle of a turn.
        if message is None or not message.source or not message.target:
            raise Rejected(400, "not a WeChat message")
        if message.time is None:  # events are deduplicated by sender + CreateTime
            raise Rejected(400, "no CreateTime")
        _ = message.id
    except Rejected:
        raise
    except (ExpatError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise Rejected(400, f"malformed XML ({type(error).__name__})") from error
    return message
