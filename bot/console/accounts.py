"""Console accounts: users, roles, password hashes, API tokens, notification status.

The tables live in the ticket database, are defined in ``bot/tickets/schema.py``
and made by its Alembic chain like every table, and are used through the ticket
store's engine: one backup, one ``DATABASE_URL`` and one migration history.

Passwords are hashed with argon2id (argon2-cffi defaults). API tokens are long
random strings, so a SHA-256 of the token is enough to store (nothing to
brute-force); the token itself is shown once.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import (
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine

from bot.tickets import db, lifecycle
from bot.tickets.models import Actor, Role
from bot.tickets.schema import console_api_tokens as tokens
from bot.tickets.schema import console_notifications as notifications
from bot.tickets.schema import console_users as users

UTC = timezone.utc

# Who may use which part of the console: one table, spelled with the store's
# roles (bot/tickets/models.Role); what each may do to a ticket is the store's
# rule (bot/tickets/lifecycle), not repeated here.
_R = Role
#: the roles a console user can have (the store's roles people hold)
ROLES = tuple(r.value for r in (_R.ADMIN, _R.DISPATCHER, _R.DEPARTMENT, _R.SUPERVISOR))
#: roles that work the whole centre (all departments, dispatch, 回访)
CENTRE_ROLES = frozenset(r.value for r in lifecycle.CENTRE)
#: roles that manage console accounts
ADMIN_ROLES = frozenset({_R.ADMIN.value})
#: roles whose home is the dispatch queue (the others start at their department's)
DISPATCH_ROLES = frozenset({_R.ADMIN.value, _R.DISPATCHER.value})
#: roles that may upload hotline transcripts
HOTLINE_ROLES = frozenset({_R.ADMIN.value, _R.DISPATCHER.value})
#: roles that see the supervision dashboard and its exports
SUPERVISION_ROLES = frozenset({_R.SUPERVISOR.value, _R.ADMIN.value})
#: roles that take and answer live sessions (在线会话; supervisors watch)
LIVE_SERVING_ROLES = frozenset({_R.ADMIN.value, _R.DISPATCHER.value, _R.DEPARTMENT.value})
#: roles that may end or route a live session someone else took (an abandoned seat)
LIVE_OVERRIDE_ROLES = frozenset({_R.ADMIN.value, _R.DISPATCHER.value})
MIN_PASSWORD = 10
MAX_PASSWORD = 256
USERNAME_MAX = 64

class AccountError(ValueError):
    """A refused account operation; ``code`` names the message shown to people."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(detail or code)
        self.code = code


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: str
    department: str | None
    must_change_password: bool
    disabled: bool
    session_epoch: int

    @property
    def actor(self) -> Actor:
        """The store's view of this user; the store checks rights with it."""
        return Actor(Role(self.role), self.username, self.department)

    @property
    def is_centre(self) -> bool:
        return self.role in CENTRE_ROLES

    @property
    def can_upload(self) -> bool:
        return self.role in HOTLINE_ROLES

    def public_dict(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "role": self.role,
            "department": self.department,
            "must_change_password": self.must_change_password,
            "disabled": self.disabled,
        }


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def generate_password() -> str:
    """A one-time password people can type: 16 URL-safe characters."""
    return secrets.token_urlsafe(12)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts:
    """Users and tokens on the ticket store's engine (same database, same pool)."""

    def __init__(self, engine: Engine, departments: list[str] | None = None) -> None:
        self.engine = engine
        self.departments = departments
        self.hasher = PasswordHasher()

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite, like the store's)."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(**{db.WRITE: True})
            with conn.begin():
                yield conn

    # -- users ------------------------------------------------------------------

    @staticmethod
    def _user(row: Any) -> User:
        return User(
            id=row.id,
            username=row.username,
            role=row.role,
            department=row.department,
            must_change_password=bool(row.must_change_password),
            disabled=bool(row.disabled),
            session_epoch=row.session_epoch,
        )

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(users)).scalar() or 0)

    def get(self, user_id: int) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.id == user_id)).first()
        return self._user(row) if row is not None else None

    def by_name(self, username: str) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.username == username)).first()
        return self._user(row) if row is not None else None

    def list(self) -> list[User]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(users).order_by(users.c.username)).all()
        return [self._user(row) for row in rows]

    def _check_password(self, password: str) -> None:
        if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
            raise AccountError("password_length")

    def add(
        self,
        username: str,
        role: str,
        department: str | None = None,
        password: str | None = None,
        *,
        must_change: bool = True,
    ) -> tuple[User, str]:
        """Create a user; returns it and its (one-time) password."""
        username = username.strip()
        if not username or len(username) > USERNAME_MAX or not username.isprintable():
            raise AccountError("bad_username")
        if role not in ROLES:
            raise AccountError("bad_role", f"role must be one of {', '.join(ROLES)}")
        department = (department or "").strip() or None
        if role == "department":
            if not department:
                raise AccountError("department_required")
            if self.departments is not None and department not in self.departments:
                raise AccountError("unknown_department", department)
        else:
            department = None
        password = password or generate_password()
        self._check_password(password)
        if self.by_name(username) is not None:
            raise AccountError("user_exists", username)
        now = _now()
        with self._write() as conn:
            conn.execute(
                insert(users).values(
                    username=username,
                    password_hash=self.hasher.hash(password),
                    role=role,
                    department=department,
                    must_change_password=must_change,
                    disabled=False,
                    session_epoch=0,
                    created_at=now,
                    updated_at=now,
                )
            )
        user = self.by_name(username)
        assert user is not None
        return user, password

    def authenticate(self, username: str, password: str) -> User | None:
        """The user when name and password match and the account is enabled."""
        if len(password) > MAX_PASSWORD or len(username) > USERNAME_MAX:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.username == username.strip())).first()
        if row is None:
            # same work as a real check, so timing does not tell which names exist
            with contextlib.suppress(VerificationError, InvalidHashError):
                self.hasher.verify(self._dummy_hash(), password)
            return None
        try:
            self.hasher.verify(row.password_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        if row.disabled:
            return None
        if self.hasher.check_needs_rehash(row.password_hash):
            self._set_hash(row.id, self.hasher.hash(password), must_change=None)
        return self._user(row)

    _dummy: str | None = None

    def _dummy_hash(self) -> str:
        if Accounts._dummy is None:
            Accounts._dummy = self.hasher.hash(secrets.token_hex(8))
        return Accounts._dummy

    def _set_hash(
        self, user_id: int, password_hash: str, *, must_change: bool | None, bump: bool = False
    ) -> None:
        values: dict[str, Any] = {"password_hash": password_hash, "updated_at": _now()}
        if must_change is not None:
            values["must_change_password"] = must_change
        if bump:
            values["session_epoch"] = users.c.session_epoch + 1
        with self._write() as conn:
            conn.execute(update(users).where(users.c.id == user_id).values(**values))

    def change_password(self, user: User, old: str, new: str) -> User:
        """The user's own change; the old password must be right and the new one differ."""
        if self.authenticate(user.username, old) is None:
            raise AccountError("wrong_password")
        self._check_password(new)
        if new == old:
            raise AccountError("password_unchanged")
        self._set_hash(user.id, self.hasher.hash(new), must_change=False, bump=True)
        fresh = self.get(user.id)
        assert fresh is not None
        return fresh

    def reset_password(self, username: str) -> str:
        """A new one-time password; ends the user's sessions and forces a change."""
        user = self._require(username)
        password = generate_password()
        self._set_hash(user.id, self.hasher.hash(password), must_change=True, bump=True)
        return password

    def end_sessions(self, user_id: int) -> None:
        """Invalidate every signed session cookie of this user (logout, server-side).

        The cookie is signed, not stored: a copy of it stays valid until its
        ``session_epoch`` no longer matches the user's. Logging out moves the
        epoch, so a copied cookie is refused at once (and the user's other
        browsers are logged out too).
        """
        with self._write() as conn:
            conn.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(session_epoch=users.c.session_epoch + 1, updated_at=_now())
            )

    def set_disabled(self, username: str, disabled: bool = True) -> User:
        """Disable (or enable) a user; disabling ends sessions and revokes API tokens."""
        user = self._require(username)
        with self._write() as conn:
            conn.execute(
                update(users)
                .where(users.c.id == user.id)
                .values(
                    disabled=disabled,
                    session_epoch=users.c.session_epoch + 1,
                    updated_at=_now(),
                )
            )
            if disabled:
                conn.execute(update(tokens).where(tokens.c.user_id == user.id).values(revoked=True))
        fresh = self.get(user.id)
        assert fresh is not None
        return fresh

    def _require(self, username: str) -> User:
        user = self.by_name(username)
        if user is None:
            raise AccountError("no_such_user", username)
        return user

    def ensure_first_admin(self) -> str | None:
        """Create ``admin`` with a one-time password when there are no users; return it."""
        if self.count():
            return None
        try:
            _user, password = self.add("admin", _R.ADMIN.value, must_change=True)
        except AccountError:  # another process created it a moment ago
            return None
        return password

    # -- API tokens ---------------------------------------------------------------

    def create_token(self, username: str, label: str = "api") -> str:
        """A new bearer token for ``username``; only its hash is stored."""
        user = self._require(username)
        if user.disabled:
            raise AccountError("user_disabled", username)
        token = "cbt_" + secrets.token_urlsafe(32)
        with self._write() as conn:
            conn.execute(
                insert(tokens).values(
                    user_id=user.id,
                    label=label[:64] or "api",
                    token_hash=_token_hash(token),
                    created_at=_now(),
                    revoked=False,
                )
            )
        return token

    def revoke_tokens(self, username: str) -> int:
        user = self._require(username)
        with self._write() as conn:
            result = conn.execute(
                update(tokens).where(tokens.c.user_id == user.id).values(revoked=True)
            )
        return int(result.rowcount or 0)

    def user_for_token(self, token: str) -> User | None:
        """The enabled user owning an unrevoked ``token``."""
        if not token or len(token) > 200:
            return None
        digest = _token_hash(token)
        with self.engine.connect() as conn:
            row = conn.execute(
                select(users)
                .join(tokens, tokens.c.user_id == users.c.id)
                .where(tokens.c.token_hash == digest, tokens.c.revoked.is_(False))
            ).first()
        if row is None or row.disabled:
            return None
        return self._user(row)

    # -- notification status -----------------------------------------------------

    def notification(self, number: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(notifications).where(notifications.c.number == number)
            ).first()
        if row is None:
            return None
        return {
            "event": row.event,
            "status": row.status,
            "attempts": row.attempts,
            "last_error": row.last_error,
            "updated_at": row.updated_at.replace(tzinfo=UTC).isoformat(),
        }

    def set_notification(
        self, number: str, event: str, status: str, error: str | None = None, *, attempt: bool
    ) -> None:
        """Record the outcome of one attempt (``attempt``) or a state without one."""
        now = _now()
        with self._write() as conn:
            row = conn.execute(
                select(notifications).where(notifications.c.number == number)
            ).first()
            if row is None:
                conn.execute(
                    insert(notifications).values(
                        number=number,
                        event=event,
                        status=status,
                        attempts=1 if attempt else 0,
                        last_error=error,
                        updated_at=now,
                    )
                )
            else:
                conn.execute(
                    update(notifications)
                    .where(notifications.c.number == number)
                    .values(
                        event=event,
                        status=status,
                        attempts=row.attempts + (1 if attempt else 0),
                        last_error=error,
                        updated_at=now,
                    )
                )

    def failed_notifications(self) -> builtins.list[str]:  # `list` is a method here
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(notifications.c.number).where(notifications.c.status == "failed")
                ).scalars()
            )
