"""Who calls the management API: an account user, by HTTP Basic or by a console session.

Registry tokens (robot and one-time) are refused with 403 whatever their secret: they are
credentials for one registry's content, never for ordering or deleting registries and tokens,
nor for signing in to the console. They are recognised by their `ogt_` password format alone,
so the answer says nothing about whether a token is valid and costs no password hash.

The console on a registry's hostname is part of that registry: its `apiSubnetAllowList` applies
to sign-in and to every request made with a session there, as to its v2 and token routes (the
session cookie is host-only, so a session opened on one host is sent to that host alone).

A console session (`sessions.py`) travels in a cookie, which a browser attaches by itself; so a
request that changes anything with it must also carry the session's CSRF token in
`X-CSRF-Token` and come from the same origin (`Origin`, `Sec-Fetch-Site`), which a page of
another site can neither read nor forge.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from ocigate.auth.admin import DEFAULT_ACCOUNT
from ocigate.auth.service import TOKEN_PREFIX, Principal
from ocigate.auth.sessions import csrf_matches
from ocigate.auth.throttle import Throttled
from ocigate.storage.registries import DEFAULT_REGISTRY

from ..authz import parse_basic, pause_refused_login
from ..clients import client_address, client_key_of
from ..hosts import registry_name_for_host
from ..subnets import address_allowed
from .context import Caller, Services
from .errors import FORBIDDEN, TOO_MANY_REQUESTS, UNAUTHORIZED, ApiError

SESSION_COOKIE = "ocigate_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="ocigate management API", charset="UTF-8"'}
# a scheme browsers do not prompt for: a console page that signed out, or whose session ended,
# must get its own sign-in form, not the browser's Basic dialog
_SESSION_CHALLENGE = {"WWW-Authenticate": 'Session realm="ocigate console"'}
_SCRIPTED = "XMLHttpRequest"  # what the console's fetches send in X-Requested-With
_ANONYMOUS = "anonymous"


def unauthorized(request: web.Request, message: str) -> ApiError:
    scripted = SESSION_COOKIE in request.cookies or request.headers.get("X-Requested-With") == _SCRIPTED
    return ApiError(401, UNAUTHORIZED, message, headers=_SESSION_CHALLENGE if scripted else _BASIC_CHALLENGE)


def check_same_origin(request: web.Request) -> None:
    """A browser says where a request comes from; a change must come from the console's own
    origin. (Clients that are not browsers send neither header, and cannot be made to send a
    cookie they were not given.)"""
    site = request.headers.get("Sec-Fetch-Site")
    origin = request.headers.get("Origin")
    same_host = origin is None or urlsplit(origin).netloc.lower() == request.host.lower()
    if (site is not None and site != "same-origin") or not same_host:
        raise ApiError(403, FORBIDDEN, "cross-origin request refused: use the console of this host")


async def check_console_network(services: Services, request: web.Request) -> None:
    """Refuse a console sign-in or session request from outside the allow list of the registry
    whose hostname it came to (before any password is checked: it costs no hash, counts as no
    failed login and says nothing about the credentials)."""
    name = registry_name_for_host(request.host, services.settings.server.domain, DEFAULT_REGISTRY)
    registry = await services.registries.resolve(name)
    if registry is not None and not address_allowed(registry.record.properties, client_address(request)):
        raise ApiError(
            403,
            FORBIDDEN,
            f"the console of {registry.record.name} does not accept requests from your network "
            "(the registry's apiSubnetAllowList)",
        )


async def account_user(services: Services, request: web.Request, username: str, password: str) -> Principal:
    """An account user's password, checked behind the failed-login throttle (Basic, and
    console sign-in)."""
    authenticator = services.authenticator
    assert authenticator is not None
    if password.startswith(TOKEN_PREFIX):
        raise ApiError(
            403,
            FORBIDDEN,
            "registry tokens cannot use the management API or the console; use an account user's credentials",
        )
    # the authenticator caches verified credentials briefly: no password hash per request.
    # SECURITY: an unknown username goes through it too, so that it costs as much (a hash)
    # as a known one and counts as a failed login
    try:
        principal = await authenticator.from_password(username, password, None, client_key_of(request))
    except Throttled as exc:
        await pause_refused_login()
        raise ApiError(429, TOO_MANY_REQUESTS, str(exc), headers={"Retry-After": str(exc.seconds)}) from None
    if principal is None or principal.kind != "user" or principal.user_id is None:
        raise unauthorized(request, "invalid username or password")
    return principal


class Authentication:
    def __init__(self, services: Services) -> None:
        self._services = services
        self._open_account: str | None = None  # the default account, when auth is off

    async def caller(self, request: web.Request) -> Caller:
        address = client_address(request)
        services = self._services
        if services.authenticator is None:  # OCIGATE_AUTH=none: everyone acts for the default account
            if self._open_account is None:
                self._open_account = (await services.store.ensure_account(DEFAULT_ACCOUNT)).id
            return Caller(self._open_account, _ANONYMOUS, address)
        header = request.headers.get("Authorization")
        if header is None and SESSION_COOKIE in request.cookies:
            return await self._session_caller(request, request.cookies[SESSION_COOKIE], address)
        scheme, _, credentials = (header or "").partition(" ")
        if scheme.lower() != "basic":
            raise unauthorized(
                request,
                "authenticate with HTTP Basic and an account user's username and password, "
                "or sign in to the console",
            )
        username, password = parse_basic(credentials)
        if not username:
            raise unauthorized(request, "malformed Basic credentials")
        principal = await account_user(services, request, username, password)
        return Caller(principal.account_id, principal.subject, address)

    async def _session_caller(self, request: web.Request, session_id: str, address: str | None) -> Caller:
        await check_console_network(self._services, request)
        session = await self._services.sessions.find(session_id)
        if session is None:
            raise unauthorized(request, "your console session has ended: sign in again")
        if request.method not in SAFE_METHODS:
            check_same_origin(request)
            # SECURITY: the cookie comes with any request the browser makes to this host; the
            # token only with those the console's own script makes
            if not csrf_matches(session_id, request.headers.get(CSRF_HEADER, "")):
                raise ApiError(
                    403,
                    FORBIDDEN,
                    f"a change made with a console session needs its CSRF token in {CSRF_HEADER}",
                )
        return Caller(session.account_id, session.username, address, session_id)
