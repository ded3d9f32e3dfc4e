"""Who calls the management API: an account user, by HTTP Basic.

Registry tokens (robot and one-time) are refused with 403 whatever their secret: they are
credentials for one registry's content, never for ordering or deleting registries and tokens.
They are recognised by their `ogt_` password format alone, so the answer says nothing about
whether a token is valid and costs no password hash.
"""

from __future__ import annotations

from aiohttp import web

from ocigate.auth.admin import DEFAULT_ACCOUNT
from ocigate.auth.service import TOKEN_PREFIX
from ocigate.auth.throttle import Throttled

from ..authz import parse_basic, pause_refused_login
from ..clients import client_address, client_key_of
from .context import Caller, Services
from .errors import FORBIDDEN, TOO_MANY_REQUESTS, UNAUTHORIZED, ApiError

_CHALLENGE = {"WWW-Authenticate": 'Basic realm="ocigate management API", charset="UTF-8"'}
_ANONYMOUS = "anonymous"


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, UNAUTHORIZED, message, headers=_CHALLENGE)


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
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            raise _unauthorized("authenticate with HTTP Basic and an account user's username and password")
        username, password = parse_basic(credentials)
        if not username:
            raise _unauthorized("malformed Basic credentials")
        if password.startswith(TOKEN_PREFIX):
            raise ApiError(
                403,
                FORBIDDEN,
                "registry tokens cannot use the management API; use an account user's credentials",
            )
        # the authenticator caches verified credentials briefly: no password hash per request.
        # SECURITY: an unknown username goes through it too, so that it costs as much (a hash)
        # as a known one and counts as a failed login
        try:
            principal = await services.authenticator.from_password(
                username, password, None, client_key_of(request)
            )
        except Throttled as exc:
            await pause_refused_login()
            raise ApiError(
                429, TOO_MANY_REQUESTS, str(exc), headers={"Retry-After": str(exc.seconds)}
            ) from None
        if principal is None or principal.kind != "user":
            raise _unauthorized("invalid username or password")
        return Caller(principal.account_id, principal.subject, address)
