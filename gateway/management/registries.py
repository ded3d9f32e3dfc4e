"""`/api/registries`, `/api/names/{name}` and `/api/locations`."""

from __future__ import annotations

from aiohttp import web

from ocigate.storage.metadata import RegistryRecord
from ocigate.storage.registries import DEFAULT_REGISTRY

from .context import Call, Services
from .envelope import created, href, json_response, timestamp
from .errors import conflict, not_found
from .pagination import OffsetQuery, next_link
from .registry_models import (
    LOCATIONS,
    GarbageCollectionRun,
    Location,
    LocationList,
    LocationProperties,
    Registry,
    RegistryCreate,
    RegistryList,
    RegistryPatch,
    RegistryProperties,
    RegistrySettings,
    StorageUsage,
    is_registry_name,
)


async def render(services: Services, record: RegistryRecord, repository_count: int | None = None) -> Registry:
    """A registry as shown; `repository_count` when the caller counted a page's at once."""
    settings = RegistrySettings.stored(record.properties)
    views = services.registries.metadata.views
    used = await views.registry_storage_bytes(record.id)
    if repository_count is None:
        repository_count = await views.count_repositories_with_content(record.id)
    run = await services.registries.collector().last_run(record.id)
    last = None
    if run is not None:
        last = GarbageCollectionRun(
            started_at=timestamp(run.started_at),
            finished_at=timestamp(run.finished_at),
            manifests=run.manifests,
            links=run.links,
            blobs=run.blobs,
            bytes=run.bytes,
        )
    properties = RegistryProperties(
        name=record.name,
        **dict(settings),
        hostname=services.hostname(record.name),
        storage_usage=StorageUsage(bytes=used),
        repository_count=repository_count,
        last_garbage_collection=last,
    )
    return Registry(
        id=record.id,
        href=href("registries", record.id),
        metadata=created(record.created_at),
        properties=properties,
    )


async def list_registries(services: Services, call: Call, query: OffsetQuery) -> web.Response:
    limit, offset = query.limit, query.offset
    metadata = services.registries.metadata.registries
    records = await metadata.list_account_registries(call.caller.account_id, offset, limit)
    total = await metadata.count_account_registries(call.caller.account_id)
    more = offset + len(records) < total
    counts = await services.registries.metadata.views.count_repositories_of([record.id for record in records])
    items = [await render(services, record, counts[record.id]) for record in records]
    next_href = next_link(href("registries"), limit, offset=offset + limit) if more else None
    return json_response(RegistryList(items=items, total=total, limit=limit, next=next_href, offset=offset))


async def create(services: Services, call: Call, body: RegistryCreate) -> web.Response:
    settings = body.applied_to(RegistrySettings())
    try:
        record = await services.registries.metadata.registries.create_registry(
            body.name, call.caller.account_id, settings.to_json()
        )
    except KeyError:  # the store's unique name decides, so that two creations cannot both win
        raise conflict(
            f"the name {body.name!r} is taken; names are global, since each is a hostname"
        ) from None
    await services.registries.cache.set_registry(body.name, record)  # served by this process at once
    await call.audit(services, "registry.create", f"registries/{record.id}", {"name": body.name})
    shown = await render(services, record)
    return json_response(shown, 201, headers={"Location": shown.href})


async def get(services: Services, call: Call) -> web.Response:
    return json_response(await render(services, await call.owned_registry(services)))


async def patch(services: Services, call: Call, body: RegistryPatch) -> web.Response:
    """Each property given replaces the stored one; properties not given stay as they are."""
    record = await call.owned_registry(services)
    return await _update(services, call, record, body, RegistrySettings.stored(record.properties))


async def replace(services: Services, call: Call, body: RegistryCreate) -> web.Response:
    """Properties not given return to their defaults."""
    record = await call.owned_registry(services)
    return await _update(services, call, record, body, RegistrySettings())


async def _update(
    services: Services, call: Call, record: RegistryRecord, body: RegistryPatch, base: RegistrySettings
) -> web.Response:
    body.check_name(record.name)
    settings = body.applied_to(base)
    updated = await services.registries.metadata.registries.update_registry(record.id, settings.to_json())
    if updated is None:  # deleted meanwhile
        raise not_found("registry")
    # the allow list applies at once here, within a second on other processes (registry cache)
    await services.registries.cache.set_registry(updated.name, updated)
    action = "registry.update" if call.request.method == "PATCH" else "registry.replace"
    detail = {"name": record.name, **settings.model_dump()}
    await call.audit(services, action, f"registries/{record.id}", detail)
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
    if not is_registry_name(name):
        return web.Response(status=400)
    exists = await services.registries.metadata.registries.get_registry(name) is not None
    return web.Response(status=200 if exists else 404)


def _location(name: str) -> Location:
    properties = LocationProperties(name=name, description=LOCATIONS[name])
    return Location(id=name, href=href("locations", name), properties=properties)


async def list_locations(services: Services, call: Call, query: OffsetQuery) -> web.Response:
    names = sorted(LOCATIONS)
    items = [_location(name) for name in query.window(names)]
    more = query.offset + query.limit < len(names)
    next_href = next_link(href("locations"), query.limit, offset=query.offset + query.limit) if more else None
    body = LocationList(items=items, total=len(names), limit=query.limit, next=next_href, offset=query.offset)
    return json_response(body)


async def get_location(services: Services, call: Call) -> web.Response:
    if call.params["location"] not in LOCATIONS:
        raise not_found("location")
    return json_response(_location(call.params["location"]))
