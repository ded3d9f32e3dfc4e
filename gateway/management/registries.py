"""`/api/registries`, `/api/names/{name}` and `/api/locations`."""

from __future__ import annotations

from aiohttp import web

from ocigate.storage.metadata import RegistryRecord
from ocigate.storage.registries import DEFAULT_REGISTRY

from .context import Call, Services
from .envelope import Json, href, json_response, page, resource, timestamp
from .errors import conflict, invalid, not_found
from .pagination import limit_of, next_link, offset_of
from .registry_settings import (
    LOCATIONS,
    NAME_RE,
    WRITABLE,
    RegistrySettings,
    check_name,
    parse_settings,
)
from .validation import Fields, read_json


async def render(services: Services, record: RegistryRecord) -> Json:
    settings = RegistrySettings.from_json(record.properties)
    used = await services.registries.metadata.registry_storage_bytes(record.id)
    properties = {
        "name": record.name,
        **settings.as_json(),
        "hostname": services.hostname(record.name),
        "storageUsage": {"bytes": used},
    }
    return resource(
        "registry",
        record.id,
        href("registries", record.id),
        properties,
        {"createdAt": timestamp(record.created_at)},
    )


async def list_registries(services: Services, call: Call) -> web.Response:
    limit, offset = limit_of(call.query), offset_of(call.query)
    metadata = services.registries.metadata
    records = await metadata.list_account_registries(call.caller.account_id, offset, limit)
    total = await metadata.count_account_registries(call.caller.account_id)
    more = offset + len(records) < total
    items = [await render(services, record) for record in records]
    next_href = next_link(href("registries"), limit, offset=offset + limit) if more else None
    return json_response(page(items, total=total, limit=limit, next_href=next_href, offset=offset))


async def create(services: Services, call: Call) -> web.Response:
    fields = Fields(await read_json(call.request), "", ("name", *WRITABLE), ("name", "location"))
    name = check_name(fields)
    settings = parse_settings(fields, RegistrySettings())
    try:
        record = await services.registries.metadata.create_registry(
            name, call.caller.account_id, settings.to_json()
        )
    except KeyError:
        raise conflict(f"the name {name!r} is taken; names are global, since each is a hostname") from None
    await services.registries.cache.set_registry(name, record)  # served by this process at once
    await call.audit(services, "registry.create", f"registries/{record.id}", {"name": name})
    body = await render(services, record)
    return json_response(body, 201, headers={"Location": body["href"]})


async def get(services: Services, call: Call) -> web.Response:
    return json_response(await render(services, await call.owned_registry(services)))


async def patch(services: Services, call: Call) -> web.Response:
    """Each property given replaces the stored one; properties not given stay as they are."""
    record = await call.owned_registry(services)
    fields = Fields(await read_json(call.request), "", ("name", *WRITABLE))
    return await _update(services, call, record, fields, RegistrySettings.from_json(record.properties))


async def replace(services: Services, call: Call) -> web.Response:
    """Properties not given return to their defaults."""
    record = await call.owned_registry(services)
    fields = Fields(await read_json(call.request), "", ("name", *WRITABLE), ("name", "location"))
    return await _update(services, call, record, fields, RegistrySettings())


async def _update(
    services: Services, call: Call, record: RegistryRecord, fields: Fields, base: RegistrySettings
) -> web.Response:
    if "name" in fields and check_name(fields) != record.name:
        raise invalid("name cannot be changed: it is the registry's hostname")
    settings = parse_settings(fields, base)
    updated = await services.registries.metadata.update_registry(record.id, settings.to_json())
    if updated is None:  # deleted meanwhile
        raise not_found("registry")
    # the allow list applies at once here, within a second on other processes (registry cache)
    await services.registries.cache.set_registry(updated.name, updated)
    action = "registry.update" if call.request.method == "PATCH" else "registry.replace"
    await call.audit(services, action, f"registries/{record.id}", {"name": record.name, **settings.as_json()})
    return json_response(await render(services, updated))


async def delete(services: Services, call: Call) -> web.Response:
    record = await call.owned_registry(services)
    if record.name == DEFAULT_REGISTRY:
        raise conflict("the default registry serves hosts that name no registry; it cannot be deleted")
    tokens = await services.store.list_tokens(record.id)
    if not await services.registries.delete(record.name):
        raise not_found("registry")
    if services.authenticator is not None:
        for token in tokens:
            services.authenticator.forget_token(token.id)
    await call.audit(services, "registry.delete", f"registries/{record.id}", {"name": record.name})
    return web.Response(status=204)


async def name_in_use(services: Services, call: Call) -> web.Response:
    """HEAD: 200 if a registry (of any account: hostnames are global) has the name, 404 if it is
    free, 400 if it is not a valid registry name."""
    name = call.params["name"]
    if NAME_RE.fullmatch(name) is None:
        return web.Response(status=400)
    exists = await services.registries.metadata.get_registry(name) is not None
    return web.Response(status=200 if exists else 404)


def _location(name: str) -> Json:
    return resource("location", name, href("locations", name), {"name": name, "description": LOCATIONS[name]})


async def list_locations(services: Services, call: Call) -> web.Response:
    limit, offset = limit_of(call.query), offset_of(call.query)
    names = sorted(LOCATIONS)
    items = [_location(name) for name in names[offset : offset + limit]]
    more = offset + limit < len(names)
    next_href = next_link(href("locations"), limit, offset=offset + limit) if more else None
    return json_response(page(items, total=len(names), limit=limit, next_href=next_href, offset=offset))


async def get_location(services: Services, call: Call) -> web.Response:
    if call.params["location"] not in LOCATIONS:
        raise not_found("location")
    return json_response(_location(call.params["location"]))
