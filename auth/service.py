"""Who is asking, and what may they do on which registry.

Account users reach every registry of their account with full access; registry tokens reach
only their own registry, within their grants, until they expire, are disabled or deleted, or
(one-time tokens) have written their tag or outlived their window after first use.

Revocation: every request re-checks the state of the user or token behind it through a cache
of a few seconds (`state_seconds`), whether it came with Basic credentials (verified ones are
cached for longer, but only as proof of the password) or with a JWT. A token JWT names its
token; a user JWT names the user's id and its credential generation, which deleting,
disabling or re-passwording the user moves on. So any of these ends Basic, `/token` and the
JWTs and refresh tokens minted before within seconds on every replica; a token changed through
the management API, and a one-time token that wrote its tag, at once in the process that did it
(`forget_token`, `token_spent`).

Passwords are checked on a bounded pool (`passwords.PasswordChecker`), an unknown name costing
as much as a known one, behind the failed-login throttle (`throttle.LoginThrottle`).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar

from ocigate.storage.stats import Counts

from .jwts import BearerTokens, Claims, InvalidToken
from .passwords import PasswordChecker
from .scopes import FULL_ACCESS, Grant, Scope, grant_all
from .store import CredentialStore, TokenRecord, UserRecord, now_ms
from .throttle import LoginThrottle, Throttled

_Record = TypeVar("_Record")
TOUCH_SECONDS = 60.0  # a token's last use is written at most this often per process
TOKEN_PREFIX = "ogt_"
_TOKEN_PASSWORD = re.compile(r"ogt_([0-9a-f]{32})_([A-Za-z0-9_-]{43})")


@dataclass(frozen=True, slots=True)
class RegistryRef:
    id: str
    account_id: str | None
    service: str  # the JWT audience: the registry's canonical host


@dataclass(frozen=True, slots=True)
class Principal:
    kind: str  # user | token
    subject: str  # username or token name
    account_id: str
    token_id: str | None = None
    registry_id: str | None = None  # a token's own registry
    grants: tuple[Grant, ...] = FULL_ACCESS
    one_time: bool = False
    user_id: str | None = None  # an account user's id, and the credential generation verified
    generation: int = 0

    def may_use(self, registry: RegistryRef) -> bool:
        if self.kind == "token":
            return self.registry_id == registry.id
        return registry.account_id is not None and registry.account_id == self.account_id

    def grant(self, scopes: list[Scope]) -> list[Scope]:
        return grant_all(self.grants, scopes)


def token_password(token_id: str, secret: str) -> str:
    return f"{TOKEN_PREFIX}{token_id}_{secret}"


class Authenticator:
    def __init__(
        self,
        store: CredentialStore,
        bearer: BearerTokens,
        *,
        one_time_window_seconds: int = 3600,
        credential_cache_seconds: float = 30.0,
        state_seconds: float = 2.0,
        checker: PasswordChecker | None = None,
        throttle: LoginThrottle | None = None,
    ) -> None:
        self.store = store
        self.bearer = bearer
        self.checker = checker or PasswordChecker()
        self.throttle = throttle or LoginThrottle(0, 0)
        self._one_time_window_ms = one_time_window_seconds * 1000
        self._credential_ttl = credential_cache_seconds
        self._state_ttl = state_seconds
        self._verified: dict[bytes, tuple[float, Principal]] = {}
        self._token_states: dict[str, tuple[float, TokenRecord | None]] = {}
        self._user_states: dict[str, tuple[float, UserRecord | None]] = {}
        self._bearer_cache: dict[tuple[str, str], Claims] = {}
        self._changes = 0  # changes seen by this process: a state read across one is not kept
        self._touched: dict[str, float] = {}  # token id → when this process last wrote its use
        # (kind, result) → count, for /metrics: "password" or "bearer"; "success", "failure"
        # or "throttled" (bearer checks are counted by the gateway, which decides them)
        self.outcomes: Counts = Counts()

    async def from_password(
        self, username: str, password: str, registry: RegistryRef | None, client: str = ""
    ) -> Principal | None:
        """Basic credentials for `registry` (None: for no registry, the management API; account
        users only) → principal, or None. `Throttled` after too many failed logins from `client`
        (its address's counting key) or for `username`."""
        try:
            principal = await self._from_password(username, password, registry, client)
        except Throttled:
            self.outcomes["password", "throttled"] += 1
            raise
        self.outcomes["password", "failure" if principal is None else "success"] += 1
        return principal

    async def _from_password(
        self, username: str, password: str, registry: RegistryRef | None, client: str
    ) -> Principal | None:
        # SECURITY: the cache key is a hash of the credentials, never the password itself
        scope = registry.id if registry is not None else ""
        key = hashlib.sha256(f"{scope}\0{username}\0{password}".encode()).digest()
        # robot-token secrets are not guessable: their failures count per client only
        throttled_name = None if _TOKEN_PASSWORD.fullmatch(password) else username
        principal = self._cached(key)
        if principal is not None:
            # SECURITY: checked even for cached credentials, or a throttled guesser would learn
            # from a 200 among its 429s that it had guessed a password in use
            await self.throttle.check(client, throttled_name)
            if principal.kind == "user" and not await self._user_alive(principal):
                self._verified.pop(key, None)
                principal = None  # verified again below: the user may be gone or re-passworded
        if principal is None:
            attempt = await self.throttle.begin(client, throttled_name)
            principal = await self._verify_password(username, password)
            if principal is None:
                return None  # the attempt stays counted as a failure
            await self.throttle.succeeded(attempt)
            if len(self._verified) > 10_000:
                self._verified.clear()
            self._verified[key] = (time.monotonic() + self._credential_ttl, principal)
        if not (principal.may_use(registry) if registry is not None else principal.kind == "user"):
            return None
        if principal.token_id is not None:
            if not await self._token_alive(principal.token_id, first_use=True):
                return None
            if self._touch_due(principal.token_id):
                await self.store.touch_token(principal.token_id, now_ms())
        return principal

    async def from_claims(self, claims: Claims) -> Principal | None:
        """The principal a verified JWT stands for, if it is still alive."""
        if claims.kind == "token" and claims.token_id is not None:
            record = await self._token_state(claims.token_id)
            if record is None or not record.is_alive(now_ms(), self._one_time_window_ms):
                return None
            if self._touch_due(record.id):
                await self.store.touch_token(record.id, now_ms())
            return _token_principal(record, claims.account_id)
        if claims.kind == "user" and claims.user_id is not None:  # none: minted before revocation
            user = await self._user_state(claims.user_id)
            if user is None or not _same_credentials(user, claims.subject, claims.generation):
                return None
            return _user_principal(user)
        return None

    def verify_bearer(self, token: str, registry: RegistryRef) -> Claims | None:
        """Signature, audience and expiry; a verified token is remembered until it expires, since
        an ES256 check costs more than the rest of a cached manifest GET."""
        key = (token, registry.service)
        cached = self._bearer_cache.get(key)
        if cached is not None:
            if cached.expires_at > time.time():
                return cached
            del self._bearer_cache[key]
        try:
            claims = self.bearer.verify(token, registry.service)
        except InvalidToken:
            return None
        if len(self._bearer_cache) > 10_000:
            self._bearer_cache.clear()
        self._bearer_cache[key] = claims
        return claims

    @property
    def changes(self) -> int:
        """Bumped by every revocation or spend this process makes (forget_*, token_spent)."""
        return self._changes

    def still_valid_until(self, claims: Claims) -> float:
        """Until when (time.monotonic()) `from_claims` would give the same principal that it just
        gave for these claims, barring a change made here (`changes`): the token's expiry, and
        the moment the user's or robot token's state, read at most `state_seconds` ago, is read
        again. 0 when that cannot be told: one-time tokens, whose window starts at first use."""
        now = time.monotonic()
        until = now + claims.expires_at - time.time()
        if claims.kind == "user" and claims.user_id is not None:
            state = self._user_states.get(claims.user_id)
            return min(until, state[0]) if state is not None else 0.0
        deadline, record = self._token_states.get(claims.token_id or "", (0.0, None))
        if record is None or record.one_time:
            return 0.0
        if record.expires_at is not None:
            until = min(until, now + record.expires_at / 1000 - time.time())
        return min(until, deadline)

    def mint(
        self, principal: Principal, audience: str, access: list[Scope], *, refresh: bool = False
    ) -> tuple[str, Claims]:
        """A JWT (or refresh token) standing for `principal` until it is revoked or expires."""
        return self.bearer.mint(
            subject=principal.subject,
            kind=principal.kind,
            account_id=principal.account_id,
            token_id=principal.token_id,
            user_id=principal.user_id,
            generation=principal.generation if principal.user_id is not None else None,
            audience=audience,
            access=access,
            refresh=refresh,
        )

    def _cached(self, key: bytes) -> Principal | None:
        cached = self._verified.get(key)
        if cached is None:
            return None
        if cached[0] <= time.monotonic():
            del self._verified[key]
            return None
        return cached[1]

    async def _verify_password(self, username: str, password: str) -> Principal | None:
        match = _TOKEN_PASSWORD.fullmatch(password)
        if match is not None:
            record = await self.store.get_token(match.group(1))
            known = record if record is not None and record.name == username else None
            # an unknown token costs a hash too
            if not await self.checker.verify(match.group(2), known.password_hash if known else None):
                return None
            assert known is not None
            account_id = await self._account_of_registry(known.registry_id)
            return _token_principal(known, account_id)
        user = await self.store.get_user(username)
        # SECURITY: an unknown user costs the same check (against a dummy hash) as a known one
        if not await self.checker.verify(password, user.password_hash if user else None):
            return None
        assert user is not None
        self._remember(self._user_states, user.id, user)
        return _user_principal(user) if user.enabled else None

    async def _account_of_registry(self, registry_id: str) -> str:
        return await self.store.registry_account(registry_id) or ""

    async def _token_alive(self, token_id: str, *, first_use: bool) -> bool:
        record = await self._token_state(token_id)
        now = now_ms()
        if record is None or not record.is_alive(now, self._one_time_window_ms):
            return False
        if first_use and record.one_time and record.first_used_at is None:
            await self.store.mark_first_use(token_id, now)
            self._token_states.pop(token_id, None)
        return True

    def _touch_due(self, token_id: str) -> bool:
        """Whether to record a use of the token now (the console's "last use"): once a minute
        at most per token and process, so that a pull with a token JWT costs a dictionary
        lookup."""
        now = time.monotonic()
        last = self._touched.get(token_id)
        if last is not None and now - last < TOUCH_SECONDS:
            return False
        if len(self._touched) > 10_000:
            self._touched.clear()
        self._touched[token_id] = now
        return True

    async def _user_alive(self, principal: Principal) -> bool:
        if principal.user_id is None:
            return False
        user = await self._user_state(principal.user_id)
        return user is not None and _same_credentials(user, principal.subject, principal.generation)

    async def _token_state(self, token_id: str) -> TokenRecord | None:
        return await self._state(self._token_states, token_id, self.store.get_token)

    async def _user_state(self, user_id: str) -> UserRecord | None:
        return await self._state(self._user_states, user_id, self.store.get_user_by_id)

    async def _state(
        self,
        states: dict[str, tuple[float, _Record]],
        key: str,
        load: Callable[[str], Awaitable[_Record]],
    ) -> _Record:
        """A token's or user's record, read at most every `state_seconds` (a read across a
        change made by this process is returned but not kept)."""
        cached = states.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        changes = self._changes
        record = await load(key)
        return self._remember(states, key, record) if changes == self._changes else record

    def _remember(self, states: dict[str, tuple[float, Any]], key: str, record: _Record) -> _Record:
        if len(states) > 10_000:
            states.clear()
        states[key] = (time.monotonic() + self._state_ttl, record)
        return record

    def forget_token(self, token_id: str) -> None:
        """Drop cached state after a change made by this process (others see it within seconds)."""
        self._changes += 1
        self._token_states.pop(token_id, None)
        self._verified.clear()

    def forget_user(self, user_id: str) -> None:
        """Drop what this process cached of a user found changed (its credentials are verified
        afresh at their next use)."""
        self._changes += 1
        self._user_states.pop(user_id, None)
        self._verified = {key: entry for key, entry in self._verified.items() if entry[1].user_id != user_id}

    def token_spent(self, token_id: str) -> None:
        """A one-time token may have written its tag here: its next request reads its state
        afresh (and no read that began before is kept)."""
        self._changes += 1
        self._token_states.pop(token_id, None)

    async def close(self) -> None:
        self.checker.close()
        await self.throttle.close()


def _same_credentials(user: UserRecord, username: str, generation: int | None) -> bool:
    """The user is enabled and still holds the credentials a principal or JWT was made from."""
    return user.enabled and user.username == username and user.generation == generation


# one Principal per record, not one per request (a frozen dataclass costs a few µs to build, a
# tenth of a bearer check); a changed record is another key
@lru_cache(maxsize=1024)
def _user_principal(user: UserRecord) -> Principal:
    return Principal("user", user.username, user.account_id, user_id=user.id, generation=user.generation)


@lru_cache(maxsize=1024)
def _token_principal(record: TokenRecord, account_id: str) -> Principal:
    return Principal(
        "token",
        record.name,
        account_id,
        token_id=record.id,
        registry_id=record.registry_id,
        grants=record.grants,
        one_time=record.one_time,
    )
