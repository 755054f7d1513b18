"""Encryption at rest of phone, 身份证 and name (Fernet, several keys for rotation).

Keys come newest first: new data is encrypted with the first, old data still
decrypts with any, and ``rotate`` re-encrypts a token under the newest key.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from bot.tickets.errors import TicketError


class PiiCipher:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise TicketError("no PII key configured / 未配置个人信息加密密钥")
        self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])

    def encrypt(self, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        return self._fernet.encrypt(value.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str | None) -> str | None:
        if not token:
            return None
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken as exc:
            raise TicketError(
                "personal data cannot be decrypted with the configured keys "
                "/ 现有密钥无法解密个人信息"
            ) from exc

    def rotate(self, token: str | None) -> str | None:
        if not token:
            return token
        return self._fernet.rotate(token.encode("ascii")).decode("ascii")
