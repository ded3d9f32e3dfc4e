"""`/api/registries/{id}/tokens`: robot and one-time tokens of a registry.

The password exists in clear only in the create response; the store keeps its scrypt hash.
A change takes effect at once in this process (`forget_token`) and within the authenticator's
state cache (2 s) on other replicas, JWTs already minted from the token included.
"""

from __future__ import annotations

from aiohttp import web

from ocigate.auth.admin import InvalidRequest, create_token
from ocigate.auth.store import ENABLED, TokenRecord
from ocigate.storage.metadata import RegistryRecord

from .context import Call, Services
from .envelope import href, json_response, timestamp
from .errors import conflict, invalid, not_found
from .pagination import OffsetQuery, next_link
from .token_models import (
    Credentials,
    NewTokenProperties,
    Scope,
    Token,
    TokenCreate,
    TokenCreated,
    TokenList,
    TokenMetadata,
    TokenPatch,
    TokenProperties,
)


def _properties(token: TokenRecord) -> TokenProperties:
    return TokenProperties(
        name=token.name,
        scopes=[Scope.shown(grant) for grant in token.grants],
        expiry_date=timestamp(token.expires_at),
        status=token.status,
        one_time=token.one_time,
    )


def _metadata(token: TokenRecord) -> TokenMetadata:
    return TokenMetadata(
        created_at=timestamp(token.created_at),
        first_used_at=timestamp(token.first_used_at),
        consumed_at=timestamp(token.consumed_at),
    )


def _href(registry: RegistryRecord, token: TokenRecord) -> str:
    return href("registries", registry.id, "tokens", token.id)


def render(registry: RegistryRecord, token: TokenRecord) -> Token:
    return Token(
        id=token.id, href=_href(registry, token), metadata=_metadata(token), properties=_properties(token)
    )


async def list_tokens(services: Services, call: Call, query: OffsetQuery) -> web.Response:
    registry = await call.owned_registry(services)
    tokens = await services.store.list_tokens(registry.id)
    items = [render(registry, token) for token in query.window(tokens)]
    end = query.offset + query.limit
    path = href("registries", registry.id, "tokens")
    next_href = next_link(path, query.limit, offset=end) if end < len(tokens) else None
    body = TokenList(items=items, total=len(tokens), limit=query.limit, next=next_href, offset=query.offset)
    return json_response(body)


async def create(services: Services, call: Call, body: TokenCreate) -> web.Response:
    registry = await call.owned_registry(services)
    grants = body.grants() or ()
    try:
        made = await create_token(
            services.store,
            registry.id,
            body.name,
            grants,
            body.expires_at,
            one_time=body.one_time,
            enabled=body.status == ENABLED,
        )
    except KeyError:
        raise conflict(f"registry {registry.name} already has a token named {body.name!r}") from None
    except InvalidRequest as exc:  # the expiry, checked again as the token is made
        raise invalid(str(exc)) from None
    token = made.record
    await call.audit(services, "token.create", _target(registry, token), {"name": body.name})
    host = services.hostname(registry.name)
    credentials = Credentials(  # shown this once: only a hash is kept
        username=body.name,
        password=made.password,
        docker_login=f"docker login {host} -u {body.name} -p {made.password}",
    )
    properties = NewTokenProperties(**dict(_properties(token)), credentials=credentials)
    shown = TokenCreated(
        id=token.id, href=_href(registry, token), metadata=_metadata(token), properties=properties
    )
    return json_response(shown, 201, headers={"Location": shown.href})


async def get(services: Services, call: Call) -> web.Response:
    registry = await call.owned_registry(services)
    return json_response(render(registry, await _token(services, call, registry)))


async def patch(services: Services, call: Call, body: TokenPatch) -> web.Response:
    """status, scopes and expiryDate as given; the rest as it is."""
    return await _update(services, call, body, body.clears_expiry, "token.update")


async def replace(services: Services, call: Call, body: TokenCreate) -> web.Response:
    """The token as given: status enabled, no expiry and oneTime false unless said otherwise."""
    return await _update(services, call, body, body.expires_at is None, "token.replace")


async def _update(
    services: Services, call: Call, body: TokenPatch | TokenCreate, clear_expiry: bool, action: str
) -> web.Response:
    registry = await call.owned_registry(services)
    token = await _token(services, call, registry)
    body.check_identity(token)
    updated = await services.store.update_token(
        token.id,
        status=body.status,
        grants=body.grants(),
        expires_at=body.expires_at,
        clear_expiry=clear_expiry,
    )
    return await _changed(services, call, registry, updated, action)


async def delete(services: Services, call: Call) -> web.Response:
    registry = await call.owned_registry(services)
    token = await _token(services, call, registry)
    if not await services.store.delete_token(token.id):
        raise not_found("token")
    _forget(services, token.id)
    await call.audit(services, "token.delete", _target(registry, token), {"name": token.name})
    return web.Response(status=204)


async def _token(services: Services, call: Call, registry: RegistryRecord) -> TokenRecord:
    token = await services.store.get_token(call.params["tokenId"])
    if token is None or token.registry_id != registry.id:
        raise not_found("token")
    return token


async def _changed(
    services: Services, call: Call, registry: RegistryRecord, token: TokenRecord | None, action: str
) -> web.Response:
    if token is None:  # deleted meanwhile
        raise not_found("token")
    _forget(services, token.id)
    detail = {"name": token.name, "status": token.status, "expiresAt": token.expires_at}
    await call.audit(services, action, _target(registry, token), detail)
    return json_response(render(registry, token))


def _forget(services: Services, token_id: str) -> None:
    if services.authenticator is not None:
        services.authenticator.forget_token(token_id)


def _target(registry: RegistryRecord, token: TokenRecord) -> str:
    return f"registries/{registry.id}/tokens/{token.id}"
