"""Authorizing `/v2/` requests (Docker token auth, and Basic for tools that never fetch a token).

A request needs the scope its route implies: pull to read, push to write, delete to delete,
the registry catalog scope for `_catalog`, and only a valid principal for `GET /v2/`. Failures
answer 401 with a `WWW-Authenticate: Bearer realm=…,service=…,scope=…` challenge (plus
`error="insufficient_scope"` when a valid token lacks the scope), which is what makes docker,
containerd, skopeo and podman fetch a token and retry.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from dataclasses import dataclass

from aiohttp import web

from ocigate.auth.jwts import Claims
from ocigate.auth.scopes import CATALOG, REGISTRY, REPOSITORY, Scope
from ocigate.auth.service import Authenticator, Principal, RegistryRef
from ocigate.auth.throttle import Throttled
from ocigate.storage.errors import RegistryError

from .clients import client_key_of, client_scheme
from .routes import Endpoint, Route

_READ = frozenset({"pull"})
_WRITE = frozenset({"pull", "push"})  # docker and containerd ask pull,push to push
_DELETE = frozenset({"delete"})


class Unauthorized(RegistryError):
    code, status, message = "UNAUTHORIZED", 401, "authentication required"


class Denied(RegistryError):
    code, status, message = "DENIED", 403, "requested access to the resource is denied"


class LoginsThrottled(RegistryError):
    # TOOMANYREQUESTS: docker and containerd show the message and do not retry at once
    code, status, message = "TOOMANYREQUESTS", 429, "too many failed logins"


# SECURITY: a refused password attempt (too many failed logins, or too many requests) is answered
# after a pause. Clients wait for an answer before they send again on a connection, so a guesser
# at full speed gets one answer per second per connection and costs the server a timer instead
# of a core; docker and containerd fetch one token per operation and never meet it.
REFUSED_LOGIN_PAUSE = 1.0


def is_login_attempt(request: web.Request) -> bool:
    """A request that tries a password: `/token`, or Basic credentials."""
    return request.path == "/token" or request.headers.get("Authorization", "")[:6].lower() == "basic "


async def pause_refused_login() -> None:
    await asyncio.sleep(REFUSED_LOGIN_PAUSE)


def throttled(exc: Throttled) -> LoginsThrottled:
    return LoginsThrottled(
        {"retryAfter": exc.seconds}, message=str(exc), headers={"Retry-After": str(exc.seconds)}
    )


async def check_password(
    request: web.Request, authenticator: Authenticator, username: str, password: str, registry: RegistryRef
) -> Principal | None:
    """Basic credentials of a request → principal or None; 429 after too many failed logins."""
    try:
        return await authenticator.from_password(username, password, registry, client_key_of(request))
    except Throttled as exc:
        await pause_refused_login()
        raise throttled(exc) from None


def required_scope(route: Route, method: str) -> tuple[Scope | None, frozenset[str]]:
    """The scope to ask for in a challenge, and the actions the request needs from it."""
    if route.endpoint is Endpoint.BASE:
        return None, frozenset()
    if route.endpoint is Endpoint.CATALOG:
        return Scope(REGISTRY, CATALOG, frozenset({"*"})), frozenset({"*"})
    if method in ("GET", "HEAD"):
        needed = _READ if route.endpoint is not Endpoint.UPLOAD else frozenset({"push"})
        return Scope(REPOSITORY, route.repository, _READ if needed == _READ else _WRITE), needed
    if method == "DELETE" and route.endpoint in (Endpoint.MANIFEST, Endpoint.BLOB):
        return Scope(REPOSITORY, route.repository, _DELETE), _DELETE
    return Scope(REPOSITORY, route.repository, _WRITE), frozenset({"push"})


def challenge(request: web.Request, service: str, scope: Scope | None, error: str | None = None) -> str:
    realm = f"{client_scheme(request)}://{request.host}/token"
    parts = [f'realm="{realm}"', f'service="{service}"']
    if scope is not None:
        parts.append(f'scope="{scope}"')
    if error:
        parts.append(f'error="{error}"')
    return "Bearer " + ",".join(parts)


@dataclass(frozen=True, slots=True)
class Access:
    """What the caller of one request may do: a principal, and for bearer tokens the scopes the
    token carries (a JWT never grants more than it was minted with, even if the principal may)."""

    principal: Principal | None  # None when auth is off
    token_access: tuple[Scope, ...] | None = None

    def allows(self, scope: Scope) -> bool:
        if self.principal is None:
            return True
        if self.token_access is not None:
            return _covered(self.token_access, scope, scope.actions)
        return scope.actions <= _granted_actions(self.principal, scope)

    @property
    def one_time_token(self) -> str | None:
        principal = self.principal
        return principal.token_id if principal is not None and principal.one_time else None


ANONYMOUS_ALLOWED = Access(None)
ACCESS = "ocigate.access"  # request key: the Access of the request
AUTHENTICATOR = web.AppKey("authenticator", Authenticator)


class BearerDecisions:
    """Bearer requests let through, remembered by what decided them (the Authorization header,
    the registry, the route's repository, endpoint and method) for as long as a fresh check is
    bound to agree: until the token expires or the user's or robot token's state is read again
    (`Authenticator.still_valid_until`), and never across a revocation made here. A pull then
    costs one lookup instead of the claims, state and scope checks (a quarter of a cached manifest
    GET). Refusals are never remembered: each goes the whole way, with its challenge."""

    __slots__ = ("_authenticator", "_entries")

    def __init__(self, authenticator: Authenticator) -> None:
        self._authenticator = authenticator
        self._entries: dict[tuple[str, ...], tuple[Access, float, int]] = {}

    def get(self, key: tuple[str, ...]) -> Access | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        access, until, changes = entry
        if until > time.monotonic() and changes == self._authenticator.changes:
            return access
        del self._entries[key]
        return None

    def remember(self, key: tuple[str, ...], access: Access, claims: Claims, changes: int) -> None:
        """`changes`: as of before the check, so that a revocation during it is not missed."""
        until = self._authenticator.still_valid_until(claims)
        if until > time.monotonic():
            if len(self._entries) >= 10_000:
                self._entries.clear()
            self._entries[key] = (access, until, changes)


async def authorize(
    request: web.Request,
    authenticator: Authenticator,
    registry: RegistryRef,
    route: Route,
    decisions: BearerDecisions | None = None,
) -> Access:
    """What the caller may do, if it may make this request; else Unauthorized or Denied."""
    header = request.headers.get("Authorization", "")
    endpoint, repository = route.endpoint.template, route.repository
    key = (
        header,
        registry.id,
        registry.account_id or "",
        registry.service,
        repository,
        endpoint,
        request.method,
    )
    if decisions is not None:
        known = decisions.get(key)
        if known is not None:
            authenticator.outcomes["bearer", "success"] += 1
            return known
    changes = authenticator.changes
    scope, needed = required_scope(route, request.method)
    scheme, _, credentials = header.partition(" ")
    scheme = scheme.lower()

    def unauthorized(error: str | None = None, message: str | None = None) -> Unauthorized:
        return Unauthorized(
            message=message,
            headers={"WWW-Authenticate": challenge(request, registry.service, scope, error)},
        )

    if scheme == "bearer":
        claims = authenticator.verify_bearer(credentials.strip(), registry)
        principal = None if claims is None or claims.refresh else await authenticator.from_claims(claims)
        if claims is None or principal is None or not principal.may_use(registry):
            authenticator.outcomes["bearer", "failure"] += 1
            if claims is None or claims.refresh:
                raise unauthorized("invalid_token", "invalid or expired token")
            raise unauthorized("invalid_token", "token revoked, expired or used")
        authenticator.outcomes["bearer", "success"] += 1
        if scope is not None and not _covered(claims.access, scope, needed):
            raise unauthorized("insufficient_scope", "token lacks the scope for this request")
        access = Access(principal, claims.access)
        if decisions is not None:
            decisions.remember(key, access, claims, changes)
        return access
    if scheme == "basic":
        username, password = parse_basic(credentials)
        principal = (
            await check_password(request, authenticator, username, password, registry) if username else None
        )
        if principal is None:
            raise unauthorized(message="invalid credentials")
        if scope is not None and not needed <= _granted_actions(principal, scope):
            raise Denied({"scope": str(scope)})
        return Access(principal)
    raise unauthorized()


def parse_basic(credentials: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    username, _, password = decoded.partition(":")
    return username, password


def _granted_actions(principal: Principal, scope: Scope) -> frozenset[str]:
    granted = principal.grant([scope])
    return granted[0].actions if granted else frozenset()


def _covered(access: tuple[Scope, ...], scope: Scope, needed: frozenset[str]) -> bool:
    actions: frozenset[str] = frozenset()
    for entry in access:
        if entry.type == scope.type and entry.name == scope.name:
            actions |= entry.actions
    return needed <= actions
