"""`/api/sessions`: console sign-in and sign-out (the session itself: `auth/sessions.py`).

Sign-in checks the password exactly as HTTP Basic does (`authn.account_user`: the failed-login
throttle, an unknown user costing a hash, registry tokens refused), obeys the subnet allow list
of the registry whose hostname it came to, and refuses a request from another origin, so that
no other site can sign a visitor in under its own account. The session id goes to the browser
only in an `HttpOnly; SameSite=Strict` cookie (`Secure` over TLS); the response body carries
the CSRF token for the console's script.
"""

from __future__ import annotations

from aiohttp import web

from ocigate.auth.sessions import Session as StoredSession
from ocigate.auth.sessions import csrf_token

from ..clients import client_address, client_scheme
from .authn import SESSION_COOKIE, account_user, check_console_network, check_same_origin, unauthorized
from .context import Call, Services
from .envelope import href, json_response, timestamp
from .errors import conflict, not_found
from .session_models import Session, SessionCreate, SessionMetadata, SessionProperties

CURRENT = href("sessions", "current")
_NO_STORE = {"Cache-Control": "no-store"}


def _render(session: StoredSession, session_id: str) -> Session:
    return Session(
        id="current",
        href=CURRENT,
        metadata=SessionMetadata(
            created_at=timestamp(session.created_at), expires_at=timestamp(session.expires_at)
        ),
        properties=SessionProperties(username=session.username, csrf_token=csrf_token(session_id)),
    )


async def sign_in(services: Services, call: Call, body: SessionCreate) -> web.Response:
    request = call.request
    check_same_origin(request)
    await check_console_network(services, request)
    if services.authenticator is None:
        raise conflict("authentication is off (OCIGATE_AUTH=none): the console needs no sign-in")
    address = client_address(request)
    ttl = services.settings.auth.session_ttl
    for _ in range(2):
        principal = await account_user(services, request, body.username, body.password)
        assert principal.user_id is not None
        # bound to the credentials as verified: a session opened on a password that has just
        # changed is dead at once
        session_id, session = await services.sessions.open(
            principal.user_id, principal.generation, ttl, address
        )
        if session is not None:
            break
        # verified against what this process cached before the user changed (its state is
        # re-read every few seconds): verify afresh, once
        await services.sessions.close(session_id)
        services.authenticator.forget_user(principal.user_id)
    else:
        raise unauthorized(request, "invalid username or password")
    await services.store.audit(
        session.username, "session.create", CURRENT, address, account_id=session.account_id
    )
    response = json_response(_render(session, session_id), 201, headers={"Location": CURRENT, **_NO_STORE})
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=ttl,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=client_scheme(request) == "https",  # over TLS: ours (issue 13), or a proxy's
    )
    return response


def _session_id(call: Call) -> str:
    if call.caller.session_id is None:
        raise not_found("console session (this request did not come with one)")
    return call.caller.session_id


async def get_current(services: Services, call: Call) -> web.Response:
    session_id = _session_id(call)
    session = await services.sessions.find(session_id)
    if session is None:  # ended since the caller was checked
        raise unauthorized(call.request, "your console session has ended: sign in again")
    return json_response(_render(session, session_id), headers=_NO_STORE)


async def sign_out(services: Services, call: Call) -> web.Response:
    session_id = _session_id(call)
    await services.sessions.close(session_id)
    await call.audit(services, "session.delete", CURRENT)
    response = web.Response(status=204, headers=_NO_STORE)
    response.del_cookie(SESSION_COOKIE, path="/")
    return response
