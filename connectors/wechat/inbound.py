"""Check, decrypt and parse what WeChat's servers POST to the webhook.

Everything here runs before anything reaches Rasa, so a request that fails a
check changes nothing. The order is cheap-first: size, signature, timestamp
window, mode, XML shape, then decryption and parsing.

What the query signature does *not* prove: ``signature`` is SHA1(token,
timestamp, nonce) and covers no byte of the body. Anyone who has seen one
callback URL (a proxy or access log) can pair that triple with any body. So:

* with ``WECHAT_AES_KEY`` set, only ``<Encrypt>`` checked by ``msg_signature``
  (which covers the ciphertext) is read: plaintext posts and ``aes`` posts
  without ``<Encrypt>`` are refused (403), and in compatible mode the plaintext
  fields beside the ciphertext are ignored;
* every mode refuses a ``timestamp`` more than :data:`MAX_SKEW` seconds from
  now, so an old triple is worthless; the channel then remembers each
  (timestamp, nonce) for longer than that window (:mod:`connectors.wechat.channel`),
  so a fresh triple is good for one message only.

Why the XML is safe to parse: wechatpy parses with xmltodict on expat, and
xmltodict (``disable_entities=True``, its default) raises on any entity
declaration, while expat never fetches external entities unless asked to. We
still refuse any DOCTYPE outright: WeChat never sends one, so a document with
one is hostile or broken, and refusing it does not depend on library defaults.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Mapping
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

#: seconds a callback's ``timestamp`` may differ from our clock, either way
MAX_SKEW = 300
#: WeChat's nonces are short random strings; a long one is not WeChat's (and would bloat keys)
MAX_NONCE_CHARS = 64

_FORBIDDEN = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


class Rejected(Exception):
    """A request the webhook refuses; ``status`` is the HTTP answer (4xx)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Inbound:
    """A verified message and how to answer it (encrypted when it came encrypted).

    ``timestamp`` and ``nonce`` are the signed query values; ``fingerprint`` is a
    digest of the message as read (after decryption), so the channel can tell a
    resend of the same message under the same triple (harmless: deduplicated by
    MsgId) from the same triple carrying another body (a forgery).
    """

    message: BaseMessage
    encrypted: bool
    nonce: str
    timestamp: int = 0
    fingerprint: str = ""

    @property
    def replay_key(self) -> str:
        """What must not be used twice for different messages: the signed (timestamp, nonce)."""
        digest = hashlib.sha1(f"{self.timestamp}:{self.nonce}".encode()).hexdigest()
        return f"nonce:{digest}"


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
    enables compatible and safe mode *and* makes them the only modes accepted.
    ``clock`` (seconds since the epoch) is injectable so tests can stand at
    any time; ``max_skew`` is the accepted distance of ``timestamp`` from it.
    """

    def __init__(self, token: str, appid: str, aes_key: str = "", *,
                 clock: Callable[[], float] = time.time, max_skew: int = MAX_SKEW) -> None:
        self.token = token
        self.appid = appid
        self.clock = clock
        self.max_skew = max_skew
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

    def fresh(self, args: Mapping[str, str]) -> int:
        """The signed ``timestamp`` as an int, or :class:`Rejected` (403) when it is
        not within :attr:`max_skew` seconds of now: a captured triple expires."""
        raw = args.get("timestamp") or ""
        if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
            raise Rejected(403, "bad timestamp")
        timestamp = int(raw)
        if abs(self.clock() - timestamp) > self.max_skew:
            raise Rejected(403, "timestamp outside the accepted window")
        if len(args.get("nonce") or "") > MAX_NONCE_CHARS:
            raise Rejected(403, "bad nonce")
        return timestamp

    def echo(self, args: Mapping[str, str]) -> str:
        """Answer of the server-verification GET: the ``echostr`` when signed and fresh."""
        echostr = args.get("echostr")
        if not echostr or not self.signed(args):
            raise Rejected(403, "bad signature")
        self.fresh(args)
        return echostr

    # -- messages ----------------------------------------------------------------
    def open(self, args: Mapping[str, str], body: bytes) -> Inbound:
        """Verify and parse one POSTed message, or raise :class:`Rejected`."""
        if len(body) > MAX_BODY_BYTES:
            raise Rejected(413, "body too large")
        if not self.signed(args):
            raise Rejected(403, "bad signature")
        timestamp = self.fresh(args)
        encrypt_type = (args.get("encrypt_type") or "raw").lower()
        nonce = args.get("nonce") or ""
        if encrypt_type not in ("raw", "aes"):
            raise Rejected(400, "unknown encrypt_type")
        if encrypt_type == "raw" and self.crypto is not None:
            # The query signature covers no byte of the body: with a key, a
            # plaintext post is a downgrade (WeChat sends aes in both modes).
            raise Rejected(403, "plaintext message refused: WECHAT_AES_KEY is set")
        xml = _checked_xml(body)
        if encrypt_type == "raw":
            message = _parse(xml)
            return Inbound(message, False, nonce, timestamp, _fingerprint(message))
        envelope = _envelope(xml)
        encrypt = envelope.get("Encrypt")
        if self.crypto is None:
            # Compatible mode without a key: the plaintext fields are all we can
            # read (the operator chose not to check the body, as in plaintext mode).
            if "MsgType" not in envelope:
                raise Rejected(400, "encrypted message but no WECHAT_AES_KEY")
            message = _parse(xml)
            return Inbound(message, False, nonce, timestamp, _fingerprint(message))
        if not isinstance(encrypt, str) or not encrypt:
            raise Rejected(403, "aes message without <Encrypt> refused")
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
        # Only the decrypted message is read; compatible mode's plaintext fields
        # beside <Encrypt> are covered by no signature and are ignored.
        message = _parse(inner)
        return Inbound(message, True, nonce, timestamp, _fingerprint(message))

    def reply(self, inbound: Inbound, content: str) -> str:
        """The passive reply XML, encrypted when the message was."""
        xml = str(TextReply(message=inbound.message, content=content).render())
        if inbound.encrypted and self.crypto is not None:
            return str(self.crypto.encrypt_message(xml, inbound.nonce, str(int(time.time()))))
        return xml


def _fingerprint(message: BaseMessage) -> str:
    """Digest of the parsed fields: equal for WeChat's resends of one message (same
    XML, whatever the whitespace or the ciphertext's random prefix), different
    for any other message."""
    fields = getattr(message, "_data", None)
    canonical = json.dumps(fields, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


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
