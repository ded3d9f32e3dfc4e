"""`/api/registries/{id}/repositories[/{repository}[/artifacts[/{digest}]]]`.

A repository name carries `/`, so in a path it is one segment with the slash percent-encoded
(`team%2Fapp`), as OpenAPI path parameters are. A repository exists here while it has content
(a manifest or a blob link): deleting it removes all of that, and it is gone from these lists.
"""

from __future__ import annotations

from aiohttp import web

from ocigate.storage.errors import RegistryError
from ocigate.storage.manifests import parse_manifest
from ocigate.storage.metadata import RegistryRecord
from ocigate.storage.metadata.records import ArtifactRecord, RepositoryUsage
from ocigate.storage.names import is_valid_repository_name

from .content_models import (
    Artifact,
    ArtifactCursor,
    ArtifactList,
    ArtifactProperties,
    Repository,
    RepositoryCursor,
    RepositoryList,
    RepositoryProperties,
    is_digest,
)
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
    )
    location = href("registries", registry.id, "repositories", usage.name)
    return Repository(id=usage.name, href=location, metadata=created(usage.created_at), properties=properties)


def _repository_name(call: Call) -> str:
    name = call.params["repository"]
    if not is_valid_repository_name(name):
        raise invalid(f"{name!r} is not a repository name (send '/' in it as %2F)")
    return name


async def list_repositories(services: Services, call: Call, query: RepositoryCursor) -> web.Response:
    registry = await call.owned_registry(services)
    limit, after = query.limit, query.after
    await services.usage.flush()  # this process's counts are exact, others' within a second
    views = services.registries.metadata.views
    rows = await views.list_repository_usage(registry.id, after or "", limit + 1)
    total = await views.count_repositories_with_content(registry.id)
    more, rows = len(rows) > limit, rows[:limit]
    path = href("registries", registry.id, "repositories")
    next_href = next_link(path, limit, cursor=rows[-1].name) if more else None
    items = [_render_repository(registry, row) for row in rows]
    return json_response(RepositoryList(items=items, total=total, limit=limit, next=next_href))


async def _usage(services: Services, registry: RegistryRecord, name: str) -> RepositoryUsage:
    usage = await services.registries.metadata.views.get_repository_usage(registry.id, name)
    if usage is None:
        raise not_found("repository")
    return usage


async def get_repository(services: Services, call: Call) -> web.Response:
    registry = await call.owned_registry(services)
    name = _repository_name(call)
    await services.usage.flush()
    return json_response(_render_repository(registry, await _usage(services, registry, name)))


async def delete_repository(services: Services, call: Call) -> web.Response:
    """Every manifest, tag, blob link and upload of the repository. Blob bytes stay for garbage
    collection (other repositories may link the same blobs)."""
    registry = await call.owned_registry(services)
    name = _repository_name(call)
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


# artifacts ---------------------------------------------------------------------------------


def artifact_size(artifact: ArtifactRecord) -> int:
    """The manifest and what it references (config, layers, child manifests), as its
    descriptors state their sizes."""
    size = len(artifact.content)
    try:
        parsed = parse_manifest(artifact.content, artifact.media_type)
    except RegistryError:  # stored before a stricter parser: count the manifest alone
        return size
    return size + sum(d.size for d in parsed.blobs) + sum(d.size for d in parsed.children)


def _render_artifact(registry: RegistryRecord, repository: str, artifact: ArtifactRecord) -> Artifact:
    properties = ArtifactProperties(
        digest=artifact.digest,
        media_type=artifact.media_type,
        artifact_type=artifact.artifact_type,
        tags=list(artifact.tags),
        size=artifact_size(artifact),
    )
    location = href("registries", registry.id, "repositories", repository, "artifacts", artifact.digest)
    return Artifact(
        id=artifact.digest, href=location, metadata=created(artifact.created_at), properties=properties
    )


async def _repository_id(services: Services, registry: RegistryRecord, name: str) -> int:
    await _usage(services, registry, name)  # 404 unless it has content
    repository_id = await services.registries.metadata.content.get_repository_id(registry.id, name)
    if repository_id is None:
        raise not_found("repository")
    return repository_id


async def list_artifacts(services: Services, call: Call, query: ArtifactCursor) -> web.Response:
    registry = await call.owned_registry(services)
    name = _repository_name(call)
    limit, after = query.limit, query.after
    repository_id = await _repository_id(services, registry, name)
    views = services.registries.metadata.views
    rows = await views.list_artifacts(repository_id, after or "", limit + 1)
    total = await views.count_artifacts(repository_id)
    more, rows = len(rows) > limit, rows[:limit]
    path = href("registries", registry.id, "repositories", name, "artifacts")
    next_href = next_link(path, limit, cursor=rows[-1].digest) if more else None
    items = [_render_artifact(registry, name, row) for row in rows]
    return json_response(ArtifactList(items=items, total=total, limit=limit, next=next_href))


async def get_artifact(services: Services, call: Call) -> web.Response:
    registry = await call.owned_registry(services)
    name = _repository_name(call)
    reference = call.params["digest"]
    if not is_digest(reference):
        raise invalid(
            f"{reference!r} is not a digest: expected sha256:<64 hex> or sha512:<128 hex>"
        ) from None
    repository_id = await _repository_id(services, registry, name)
    artifact = await services.registries.metadata.views.get_artifact(repository_id, reference)
    if artifact is None:
        raise not_found("artifact")
    return json_response(_render_artifact(registry, name, artifact))
