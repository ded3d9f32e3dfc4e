"""Accounts, users and registry tokens in the metadata database (same engine, same migrations)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, Final

import orjson

from ocigate.storage.metadata.engine import SqlEngine

from .scopes import Grant

ENABLED: Final = "enabled"
DISABLED: Final = "disabled"


@dataclass(frozen=True, slots=True)
class AccountRecord:
    id: str
    name: str
    created_at: int


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: str
    account_id: str
    username: str
    password_hash: str
    created_at: int
    status: str = ENABLED
    # SECURITY: raised by every change of the user's credentials (password, disabling); JWTs and
    # refresh tokens carry the generation they were minted under and die when it moves on
    generation: int = 0

    @property
    def enabled(self) -> bool:
        return self.status == ENABLED


@dataclass(frozen=True, slots=True)
class TokenRecord:
    id: str
    registry_id: str
    name: str
    password_hash: str
    grants: tuple[Grant, ...]
    expires_at: int | None  # ms
    status: str
    one_time: bool
    first_used_at: int | None
    consumed_at: int | None
    created_at: int

    def is_alive(self, now_ms: int, one_time_window_ms: int) -> bool:
        if self.status != ENABLED or (self.expires_at is not None and now_ms >= self.expires_at):
            return False
        if self.one_time:
            if self.consumed_at is not None:
                return False
            if self.first_used_at is not None and now_ms >= self.first_used_at + one_time_window_ms:
                return False
        return True


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: int  # ms
    actor: str
    action: str
    target: str
    address: str | None
    detail: object


_AUDIT_COLUMNS = "id, at, actor, action, target, address, detail"
_USER_COLUMNS = "id, account_id, username, password_hash, created_at, status, generation"
_TOKEN_COLUMNS = (
    "id, registry_id, name, password_hash, scopes, expires_at, status, one_time, first_used_at, "
    "consumed_at, created_at"
)


def now_ms() -> int:
    return int(time.time() * 1000)


def _token(row: tuple[Any, ...]) -> TokenRecord:
    scopes = orjson.loads(row[4])
    grants = tuple(Grant(s["type"], s["name"], frozenset(s["actions"])) for s in scopes)
    return TokenRecord(
        str(row[0]),
        str(row[1]),
        str(row[2]),
        str(row[3]),
        grants,
        row[5],
        str(row[6]),
        bool(row[7]),
        row[8],
        row[9],
        row[10],
    )


def _audit_entry(row: tuple[Any, ...]) -> AuditEntry:
    detail = orjson.loads(row[6]) if row[6] else None
    return AuditEntry(row[0], row[1], row[2], row[3], row[4], row[5], detail)


def encode_grants(grants: tuple[Grant, ...]) -> str:
    return orjson.dumps(
        [{"type": g.type, "name": g.pattern, "actions": sorted(g.actions)} for g in grants]
    ).decode()


class CredentialStore:
    def __init__(self, engine: SqlEngine) -> None:
        self._engine = engine

    # accounts and users ----------------------------------------------------------------------

    async def ensure_account(self, name: str) -> AccountRecord:
        await self._engine.execute(
            "INSERT INTO accounts (id, name, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
            uuid.uuid4().hex,
            name,
            now_ms(),
        )
        row = await self._engine.fetchone("SELECT id, name, created_at FROM accounts WHERE name = ?", name)
        assert row is not None
        return AccountRecord(*row)

    async def create_user(self, account_id: str, username: str, password_hash: str) -> UserRecord:
        record = UserRecord(uuid.uuid4().hex, account_id, username, password_hash, now_ms())
        changed = await self._engine.execute(
            "INSERT INTO users (id, account_id, username, password_hash, created_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (username) DO NOTHING",
            record.id,
            record.account_id,
            record.username,
            record.password_hash,
            record.created_at,
        )
        if not changed:
            raise KeyError(username)
        return record

    async def get_user(self, username: str) -> UserRecord | None:
        row = await self._engine.fetchone(f"SELECT {_USER_COLUMNS} FROM users WHERE username = ?", username)
        return UserRecord(*row) if row else None

    async def get_user_by_id(self, user_id: str) -> UserRecord | None:
        row = await self._engine.fetchone(f"SELECT {_USER_COLUMNS} FROM users WHERE id = ?", user_id)
        return UserRecord(*row) if row else None

    async def set_user_status(self, username: str, status: str) -> bool:
        """Enable or disable a user; either way its earlier JWTs and refresh tokens die."""
        changed = await self._engine.execute(
            "UPDATE users SET status = ?, generation = generation + 1 WHERE username = ?", status, username
        )
        return changed > 0

    async def set_user_password(self, username: str, password_hash: str) -> bool:
        changed = await self._engine.execute(
            "UPDATE users SET password_hash = ?, generation = generation + 1 WHERE username = ?",
            password_hash,
            username,
        )
        return changed > 0

    async def count_users(self) -> int:
        row = await self._engine.fetchone("SELECT COUNT(*) FROM users")
        return int(row[0]) if row else 0

    async def delete_user(self, username: str) -> bool:
        return await self._engine.execute("DELETE FROM users WHERE username = ?", username) > 0

    async def registry_account(self, registry_id: str) -> str | None:
        row = await self._engine.fetchone("SELECT account_id FROM registries WHERE id = ?", registry_id)
        return row[0] if row else None

    async def adopt_orphan_registries(self, account_id: str) -> None:
        """Registries created without an account (the default one, the CLI's) join the default account."""
        await self._engine.execute(
            "UPDATE registries SET account_id = ? WHERE account_id IS NULL", account_id
        )

    async def get_account(self, name: str) -> AccountRecord | None:
        row = await self._engine.fetchone("SELECT id, name, created_at FROM accounts WHERE name = ?", name)
        return AccountRecord(*row) if row else None

    # registry tokens -------------------------------------------------------------------------

    async def create_token(
        self,
        registry_id: str,
        name: str,
        password_hash: str,
        grants: tuple[Grant, ...],
        expires_at: int | None,
        one_time: bool,
        status: str = ENABLED,
    ) -> TokenRecord:
        record = TokenRecord(
            uuid.uuid4().hex,
            registry_id,
            name,
            password_hash,
            grants,
            expires_at,
            status,
            one_time,
            None,
            None,
            now_ms(),
        )
        changed = await self._engine.execute(
            f"INSERT INTO tokens ({_TOKEN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (registry_id, name) DO NOTHING",
            record.id,
            registry_id,
            name,
            password_hash,
            encode_grants(grants),
            expires_at,
            status,
            int(one_time),
            None,
            None,
            record.created_at,
        )
        if not changed:
            raise KeyError(name)
        return record

    async def get_token(self, token_id: str) -> TokenRecord | None:
        row = await self._engine.fetchone(f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE id = ?", token_id)
        return _token(row) if row else None

    async def list_tokens(self, registry_id: str) -> list[TokenRecord]:
        rows = await self._engine.fetchall(
            f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE registry_id = ? ORDER BY name", registry_id
        )
        return [_token(row) for row in rows]

    async def update_token(
        self,
        token_id: str,
        *,
        status: str | None = None,
        grants: tuple[Grant, ...] | None = None,
        expires_at: int | None = None,
        clear_expiry: bool = False,
    ) -> TokenRecord | None:
        if status is not None:
            await self._engine.execute("UPDATE tokens SET status = ? WHERE id = ?", status, token_id)
        if grants is not None:
            await self._engine.execute(
                "UPDATE tokens SET scopes = ? WHERE id = ?", encode_grants(grants), token_id
            )
        if expires_at is not None or clear_expiry:
            await self._engine.execute("UPDATE tokens SET expires_at = ? WHERE id = ?", expires_at, token_id)
        return await self.get_token(token_id)

    async def delete_token(self, token_id: str) -> bool:
        return await self._engine.execute("DELETE FROM tokens WHERE id = ?", token_id) > 0

    async def mark_first_use(self, token_id: str, at: int) -> None:
        await self._engine.execute(
            "UPDATE tokens SET first_used_at = ? WHERE id = ? AND first_used_at IS NULL", at, token_id
        )

    # audit -----------------------------------------------------------------------------------

    async def audit(
        self,
        actor: str,
        action: str,
        target: str,
        address: str | None,
        detail: object = None,
        account_id: str | None = None,
    ) -> None:
        await self._engine.execute(
            "INSERT INTO audit_log (at, actor, action, target, address, detail, account_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            now_ms(),
            actor,
            action,
            target,
            address,
            orjson.dumps(detail).decode() if detail is not None else None,
            account_id,
        )

    async def account_audit(
        self, account_id: str, *, before_id: int | None = None, entry_id: int | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """An account's trail, newest first (the management API's `GET /api/audit`)."""
        sql = f"SELECT {_AUDIT_COLUMNS} FROM audit_log WHERE account_id = ?"
        args: list[object] = [account_id]
        if before_id is not None:
            sql += " AND id < ?"
            args.append(before_id)
        if entry_id is not None:
            sql += " AND id = ?"
            args.append(entry_id)
        rows = await self._engine.fetchall(sql + " ORDER BY id DESC LIMIT ?", *args, limit)
        return [_audit_entry(row) for row in rows]

    async def count_account_audit(self, account_id: str) -> int:
        row = await self._engine.fetchone("SELECT COUNT(*) FROM audit_log WHERE account_id = ?", account_id)
        return int(row[0]) if row else 0

    async def audit_entries(self, limit: int = 100) -> list[dict[str, object]]:
        rows = await self._engine.fetchall(
            "SELECT at, actor, action, target, address, detail FROM audit_log ORDER BY id DESC LIMIT ?", limit
        )
        keys = ("at", "actor", "action", "target", "address", "detail")
        return [dict(zip(keys, row, strict=True)) for row in rows]
