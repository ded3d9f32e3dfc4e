"""Administrative operations shared by the CLI and the management API: users, tokens, bootstrap."""

from __future__ import annotations

from dataclasses import dataclass

from .passwords import hash_password, new_secret
from .scopes import Grant, parse_grant
from .service import token_password
from .store import DISABLED, ENABLED, AccountRecord, CredentialStore, TokenRecord, UserRecord, now_ms

DEFAULT_ACCOUNT = "default"
MIN_EXPIRY_MS = 3600 * 1000  # a token's expiry is at least an hour ahead


class InvalidRequest(ValueError):
    """Input the caller must fix; the message says what."""


@dataclass(frozen=True)
class CreatedToken:
    record: TokenRecord
    password: str  # shown once, never stored


async def bootstrap(store: CredentialStore, admin_password: str | None) -> tuple[AccountRecord, str | None]:
    """The default account, owning every registry without one, and a first user `admin`.

    Returns the account and the admin password if this call generated it (print it once)."""
    account = await store.ensure_account(DEFAULT_ACCOUNT)
    await store.adopt_orphan_registries(account.id)
    if await store.count_users() > 0:
        return account, None
    password = admin_password or new_secret()
    try:
        await create_user(store, account, "admin", password)
    except KeyError:  # another replica bootstrapped first
        return account, None
    return account, None if admin_password else password


async def create_user(
    store: CredentialStore, account: AccountRecord, username: str, password: str
) -> UserRecord:
    if not username or ":" in username or len(username) > 64 or username.startswith("ogt_"):
        raise InvalidRequest("username must be 1-64 characters, without ':' and not starting with 'ogt_'")
    _check_password(password)
    return await store.create_user(account.id, username, hash_password(password))


async def change_password(store: CredentialStore, username: str, password: str) -> bool:
    """A new password; the user's earlier JWTs and refresh tokens die with the old one."""
    _check_password(password)
    return await store.set_user_password(username, hash_password(password))


def _check_password(password: str) -> None:
    if len(password) < 12:
        raise InvalidRequest("password must be at least 12 characters")


def parse_grants(entries: list[dict[str, object]]) -> tuple[Grant, ...]:
    if not isinstance(entries, list) or not entries:
        raise InvalidRequest("scopes must be a non-empty list of {name, type, actions}")
    grants = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise InvalidRequest("each scope is an object {name, type, actions}")
        actions = entry.get("actions")
        if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
            raise InvalidRequest("scope actions must be a list of pull, push, delete")
        try:
            grants.append(
                parse_grant(str(entry.get("type", "repository")), str(entry.get("name", "")), actions)
            )
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
    return tuple(grants)


def parse_cli_scope(text: str) -> dict[str, object]:
    """`team/*:pull,push` or `registry:catalog` (CLI shorthand) as a scope entry."""
    if text in ("registry", "registry:catalog"):
        return {"type": "registry", "name": "catalog", "actions": ["pull"]}
    pattern, _, actions = text.rpartition(":")
    if not pattern:
        raise InvalidRequest(f"scope {text!r}: expected PATTERN:ACTIONS, e.g. 'team/*:pull,push'")
    return {"type": "repository", "name": pattern, "actions": actions.split(",")}


def validate_expiry(expires_at_ms: int | None) -> None:
    if expires_at_ms is not None and expires_at_ms < now_ms() + MIN_EXPIRY_MS:
        raise InvalidRequest("a token's expiry must be at least one hour in the future")


async def create_token(
    store: CredentialStore,
    registry_id: str,
    name: str,
    grants: tuple[Grant, ...],
    expires_at_ms: int | None,
    *,
    one_time: bool = False,
    enabled: bool = True,
) -> CreatedToken:
    if not name or len(name) > 64 or not all(c.isalnum() or c in "-_." for c in name):
        raise InvalidRequest("token name must be 1-64 letters, digits, '-', '_' or '.'")
    validate_expiry(expires_at_ms)
    secret = new_secret()
    record = await store.create_token(
        registry_id,
        name,
        hash_password(secret),
        grants,
        expires_at_ms,
        one_time,
        ENABLED if enabled else DISABLED,
    )
    return CreatedToken(record, token_password(record.id, secret))
