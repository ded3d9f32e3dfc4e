"""`/api/registries/{id}/repositories[/{repository}]` (its artifacts and tags: `artifacts.py`).

A repository name carries `/`, so in a path it is one segment with the slash percent-encoded
(`team%2Fapp`), as OpenAPI path parameters are. A repository exists here while it has content
(a manifest or a blob link): deleting it removes all of that, and it is gone from these lists.
"""

from __future__ import annotations

from aiohttp import web

from ocigate.storage.metadata import RegistryRecord
from ocigate.storage.metadata.records import RepositoryUsage
from ocigate.storage.names import is_valid_repository_name

from .content_models import Repository, RepositoryCursor, RepositoryList, RepositoryProperties
from .context import Call, Services
from .envelope import created, href, json_response, timestamp
from .errors import invalid, not_found
from .pagination import next_link


def _render_repository(registry: RegistryRecord, usage: RepositoryUsage) -> Repository:
    properties = RepositoryProperties(
        name=usage.name,
        artifact_count=usage.artifact_count,
        pull_count=usage.pull_count,
        push_count=usage.push_count,
        last_pulled_at=timestamp(usage.last_pull_at),
        last_pushed_at=timestamp(usage.last_push_at),
        size=usage.size,
    )
    location = href("registries", registry.id, "repositories", usage.name)
    return Repository(id=usage.name, href=location, metadata=created(usage.created_at), properties=properties)


def repository_name(call: Call) -> str:
    name = call.params["repository"]
    if not is_valid_repository_name(name):
        raise invalid(f"{name!r} is not a repository name (send '/' in it as %2F)")
    return name


async def list_repositories(services: Services, call: Call, query: RepositoryCursor) -> web.Response:
    registry = await call.owned_registry(services)
    limit, after = query.limit, query.after
    await services.usage.flush()  # this process's counts are exact, others' within a second
    views = services.registries.metadata.views
    prefix = query.prefix or ""
    rows = await views.list_repository_usage(registry.id, after or "", limit + 1, prefix)
    total = await views.count_repositories_with_content(registry.id, prefix)
    more, rows = len(rows) > limit, rows[:limit]
    path = href("registries", registry.id, "repositories")
    next_href = next_link(path, limit, cursor=rows[-1].name, prefix=query.prefix) if more else None
    items = [_render_repository(registry, row) for row in rows]
    return json_response(RepositoryList(items=items, total=total, limit=limit, next=next_href))


async def usage_of(services: Services, registry: RegistryRecord, name: str) -> RepositoryUsage:
    usage = await services.registries.metadata.views.get_repository_usage(registry.id, name)
    if usage is None:
        raise not_found("repository")
    return usage


async def get_repository(services: Services, call: Call) -> web.Response:
    registry = await call.owned_registry(services)
    name = repository_name(call)
    await services.usage.flush()
    return json_response(_render_repository(registry, await usage_of(services, registry, name)))


async def delete_repository(services: Services, call: Call) -> web.Response:
    """Every manifest, tag, blob link and upload of the repository. Blob bytes stay for garbage
    collection (other repositories may link the same blobs)."""
    registry = await call.owned_registry(services)
    name = repository_name(call)
    await services.usage.flush()  # counts from before the delete must not land after it
    cleared = await services.registries.metadata.content.clear_repository(registry.id, name)
    if cleared is None:
        raise not_found("repository")
    cache = services.registries.cache
    for digest in cleared.digests:
        await cache.drop_manifest(cleared.repository_id, digest)
    await cache.drop_tags(cleared.repository_id, list(cleared.tags))
    detail = {"registry": registry.name, "repository": name, "manifests": len(cleared.digests)}
    await call.audit(services, "repository.delete", f"registries/{registry.id}/repositories/{name}", detail)
    return web.Response(status=204)
