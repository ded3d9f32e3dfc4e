"""`GET /token` and `POST /token`: the Docker token endpoint.

GET (docker, skopeo, podman): Basic auth, `scope` repeated, `offline_token=true` asks for a
refresh token (docker login). POST (containerd, docker refresh): an OAuth2 form with
`grant_type=password` or `refresh_token` and space-separated scopes. The grant is the
intersection of what is asked and what is allowed; a request with no scope still checks the
credentials (docker and podman login).
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from aiohttp import web

from ocigate.auth.scopes import parse_scopes
from ocigate.auth.service import Authenticator, Principal, RegistryRef

from ..authz import check_password, parse_basic
from ..clients import client_address
from ..errors import oci_error


def _unauthorized(message: str) -> web.Response:
    return oci_error(401, "UNAUTHORIZED", message, headers={"WWW-Authenticate": 'Basic realm="ocigate"'})


async def issue(
    request: web.Request, authenticator: Authenticator, registry: RegistryRef
) -> web.StreamResponse:
    if request.method == "POST":
        form = await request.post()
        grant_type = str(form.get("grant_type", ""))
        scopes = parse_scopes([str(v) for v in form.getall("scope", [])])
        if grant_type == "password":
            username = str(form.get("username", ""))
            password = str(form.get("password", ""))
            principal = (
                await check_password(request, authenticator, username, password, registry)
                if username
                else None
            )
            offline = str(form.get("access_type", "")) == "offline"
        elif grant_type == "refresh_token":
            principal = await _from_refresh(authenticator, str(form.get("refresh_token", "")), registry)
            offline = False
        else:
            return oci_error(400, "UNSUPPORTED", "grant_type must be password or refresh_token")
    else:
        username, password = parse_basic(request.headers.get("Authorization", "").partition(" ")[2])
        principal = (
            await check_password(request, authenticator, username, password, registry) if username else None
        )
        scopes = parse_scopes(request.query.getall("scope", []))
        offline = request.query.get("offline_token", "").lower() == "true"
    if principal is None:
        return _unauthorized("invalid credentials")

    granted = principal.grant(scopes)
    token, claims = authenticator.mint(principal, registry.service, granted)
    body: dict[str, object] = {
        "token": token,
        "access_token": token,
        "expires_in": claims.expires_at - claims.issued_at,
        "issued_at": datetime.fromtimestamp(claims.issued_at, UTC).isoformat().replace("+00:00", "Z"),
    }
    if offline:
        body["refresh_token"], _ = authenticator.mint(principal, registry.service, [], refresh=True)
    await authenticator.store.audit(
        principal.subject,
        "token.issue",
        registry.service,
        client_address(request),
        {"kind": principal.kind, "scopes": [str(s) for s in granted]},
        account_id=principal.account_id or None,
    )
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def _from_refresh(
    authenticator: Authenticator, refresh_token: str, registry: RegistryRef
) -> Principal | None:
    claims = authenticator.verify_bearer(refresh_token, registry)
    if claims is None or not claims.refresh:
        return None
    principal = await authenticator.from_claims(claims)
    return principal if principal is not None and principal.may_use(registry) else None
