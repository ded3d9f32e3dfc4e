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

from . import token_input
from .context import Call, Services
from .envelope import Json, href, json_response, page, resource, timestamp
from .errors import conflict, invalid, not_found
from .pagination import limit_of, next_link, offset_of
from .validation import Fields, read_json


def render(registry: RegistryRecord, token: TokenRecord) -> Json:
    properties = {
        "name": token.name,
        "scopes": [token_input.scope_json(grant) for grant in token.grants],
        "expiryDate": timestamp(token.expires_at),
        "status": token.status,
        "oneTime": token.one_time,
    }
    metadata = {
        "createdAt": timestamp(token.created_at),
        "firstUsedAt": timestamp(token.first_used_at),
        "consumedAt": timestamp(token.consumed_at),
    }
    return resource(
        "token", token.id, href("registries", registry.id, "tokens", token.id), properties, metadata
    )


async def list_tokens(services: Services, call: Call) -> web.Response:
    registry = await call.owned_registry(services)
    limit, offset = limit_of(call.query), offset_of(call.query)
    tokens = await services.store.list_tokens(registry.id)
    items = [render(registry, token) for token in tokens[offset : offset + limit]]
    more = offset + limit < len(tokens)
    path = href("registries", registry.id, "tokens")
    next_href = next_link(path, limit, offset=offset + limit) if more else None
    return json_response(page(items, total=len(tokens), limit=limit, next_href=next_href, offset=offset))


async def create(services: Services, call: Call) -> web.Response:
    registry = await call.owned_registry(services)
    fields = Fields(await read_json(call.request), "", token_input.WRITABLE, ("name", "scopes"))
    name = token_input.token_name(fields)
    grants = token_input.scopes(fields)
    expires_at = token_input.expiry(fields) if "expiryDate" in fields else None
    enabled = token_input.status(fields) == ENABLED if "status" in fields else True
    one_time = fields.flag("oneTime") if "oneTime" in fields else False
    try:
        created = await create_token(
            services.store, registry.id, name, grants, expires_at, one_time=one_time, enabled=enabled
        )
    except KeyError:
        raise conflict(f"registry {registry.name} already has a token named {name!r}") from None
    except InvalidRequest as exc:
        raise invalid(str(exc)) from None
    await call.audit(services, "token.create", _target(registry, created.record), {"name": name})
    body = render(registry, created.record)
    host = services.hostname(registry.name)
    body["properties"]["credentials"] = {  # shown this once: only a hash is kept
        "username": name,
        "password": created.password,
        "dockerLogin": f"docker login {host} -u {name} -p {created.password}",
    }
    return json_response(body, 201, headers={"Location": body["href"]})


async def get(services: Services, call: Call) -> web.Response:
    registry = await call.owned_registry(services)
    return json_response(render(registry, await _token(services, call, registry)))


async def patch(services: Services, call: Call) -> web.Response:
    """status, scopes and expiryDate as given; the rest as it is."""
    registry = await call.owned_registry(services)
    token = await _token(services, call, registry)
    fields = Fields(await read_json(call.request), "", token_input.WRITABLE)
    _check_unchanged(fields, token)
    updated = await services.store.update_token(
        token.id,
        status=token_input.status(fields) if "status" in fields else None,
        grants=token_input.scopes(fields) if "scopes" in fields else None,
        expires_at=token_input.expiry(fields) if "expiryDate" in fields else None,
        clear_expiry=fields.is_null("expiryDate"),
    )
    return await _changed(services, call, registry, updated, "token.update")


async def replace(services: Services, call: Call) -> web.Response:
    """The token as given: status enabled, no expiry and oneTime false unless said otherwise."""
    registry = await call.owned_registry(services)
    token = await _token(services, call, registry)
    fields = Fields(await read_json(call.request), "", token_input.WRITABLE, ("name", "scopes"))
    _check_unchanged(fields, token, replacing=True)
    expires_at = token_input.expiry(fields) if "expiryDate" in fields else None
    updated = await services.store.update_token(
        token.id,
        status=token_input.status(fields) if "status" in fields else ENABLED,
        grants=token_input.scopes(fields),
        expires_at=expires_at,
        clear_expiry=expires_at is None,
    )
    return await _changed(services, call, registry, updated, "token.replace")


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


def _check_unchanged(fields: Fields, token: TokenRecord, *, replacing: bool = False) -> None:
    """name and oneTime are what the token is: they may be repeated, not changed."""
    if "name" in fields and token_input.token_name(fields) != token.name:
        raise invalid("name cannot be changed: it is the token's username; create a new token instead")
    one_time = fields.flag("oneTime") if "oneTime" in fields else (False if replacing else token.one_time)
    if one_time != token.one_time:
        raise invalid("oneTime cannot be changed; create a new token instead")


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
