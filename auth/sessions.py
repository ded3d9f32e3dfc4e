"""Web console sessions: a browser signs in once and holds an opaque session id, not the password.

The id is 256 random bits; the metadata database keeps only its SHA-256 (a fast hash is enough
for a secret nobody can guess, and every replica can look it up). A session names its user and
the credential generation it was opened under, and is read together with the user's current
row: deleting, disabling or re-passwording the user ends it at the next request, on every
replica. It ends at `expires_at` (the auth section's `session_ttl` after sign-in) or at sign-out.

The CSRF token is derived from the id (an HMAC keyed with it): the server stores nothing more,
and only who holds the id, which the cookie keeps from scripts, can compute it. The browser
gets it at sign-in and from `GET /api/sessions/current`, and sends it with every change.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from ocigate.storage.metadata.engine import SqlEngine

from .store import ENABLED, now_ms

_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{43}")  # token_urlsafe(32)
_CSRF_CONTEXT = b"ocigate console csrf v1"


@dataclass(frozen=True, slots=True)
class Session:
    user_id: str
    username: str
    account_id: str
    created_at: int  # ms
    expires_at: int  # ms


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


def is_session_id(text: str) -> bool:
    return _SESSION_ID.fullmatch(text) is not None


def _id_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def csrf_token(session_id: str) -> str:
    digest = hmac.new(session_id.encode(), _CSRF_CONTEXT, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def csrf_matches(session_id: str, token: str) -> bool:
    # SECURITY: constant time, so that a token cannot be found byte by byte
    return hmac.compare_digest(csrf_token(session_id).encode(), token.encode("utf-8", "replace"))


class SessionStore:
    def __init__(self, engine: SqlEngine) -> None:
        self._engine = engine

    async def open(
        self, user_id: str, generation: int, ttl_seconds: int, address: str | None
    ) -> tuple[str, Session | None]:
        """A new session for the user as verified (its generation); returns its id and the
        session as read back (None if the user changed meanwhile: the session is already dead)."""
        now = now_ms()
        await self._engine.execute("DELETE FROM console_sessions WHERE expires_at <= ?", now)
        session_id = new_session_id()
        await self._engine.execute(
            "INSERT INTO console_sessions (id_hash, user_id, generation, created_at, expires_at, address) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            _id_hash(session_id),
            user_id,
            generation,
            now,
            now + ttl_seconds * 1000,
            address,
        )
        return session_id, await self.find(session_id)

    async def find(self, session_id: str) -> Session | None:
        """The live session with this id: not expired, its user enabled and with the credentials
        it signed in with."""
        if not is_session_id(session_id):
            return None
        row = await self._engine.fetchone(
            "SELECT u.id, u.username, u.account_id, s.created_at, s.expires_at "
            "FROM console_sessions s JOIN users u ON u.id = s.user_id "
            "WHERE s.id_hash = ? AND s.expires_at > ? AND u.status = ? AND u.generation = s.generation",
            _id_hash(session_id),
            now_ms(),
            ENABLED,
        )
        return Session(*row) if row else None

    async def close(self, session_id: str) -> bool:
        if not is_session_id(session_id):
            return False
        deleted = await self._engine.execute(
            "DELETE FROM console_sessions WHERE id_hash = ?", _id_hash(session_id)
        )
        return deleted > 0
