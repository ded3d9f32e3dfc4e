"""`…/repositories/{repository}/artifacts[/{digest}]` and `…/tags/{tag}`: what a repository holds.

An artifact is a stored manifest, tagged or not, with what the console shows of it: its kind
(a runnable image, a multi-platform index, or another artifact such as a signature or an SBOM),
an index's platforms, the manifest it refers to (its subject) and those that refer to it
(referrers). Deletes go through the domain (`storage/registry.py`), which drops the caches, as
the Distribution API's deletes do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from ocigate.storage.errors import RegistryError
from ocigate.storage.manifests import INDEXES, parse_manifest
from ocigate.storage.metadata import ReferrerRecord, RegistryRecord
from ocigate.storage.metadata.records import ArtifactRecord
from ocigate.storage.names import is_valid_tag
from ocigate.storage.registry import Registry

from .content_models import (
    Artifact,
    ArtifactCursor,
    ArtifactList,
    ArtifactMetadata,
    ArtifactProperties,
    Child,
    Referrer,
    is_digest,
)
from .context import Call, Services
from .envelope import href, json_response, timestamp
from .errors import invalid, not_found
from .pagination import next_link
from .repositories import repository_name, usage_of

# configs of images a runtime can run; other configs (and an explicit artifactType) mark artifacts
_IMAGE_CONFIGS = frozenset(
    {"application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"}
)


@dataclass(frozen=True, slots=True)
class _Shape:
    kind: str
    children: list[Child]
    subject: str | None
    size: int

    @property
    def platforms(self) -> list[str]:
        return list(dict.fromkeys(child.platform for child in self.children if child.platform))


def _shape(artifact: ArtifactRecord) -> _Shape:
    """Kind, platforms, subject and size (the manifest and what its descriptors reference)."""
    content = artifact.content
    try:
        parsed = parse_manifest(content, artifact.media_type)
        document = orjson.loads(content)
    except (RegistryError, orjson.JSONDecodeError):  # stored before a stricter parser
        return _Shape("artifact", [], None, len(content))
    size = len(content) + sum(d.size for d in parsed.blobs) + sum(d.size for d in parsed.children)
    subject = str(parsed.subject.digest) if parsed.subject is not None else None
    if parsed.media_type in INDEXES:
        return _Shape("index", _children(document), subject, size)
    config = document.get("config") or {}
    runnable = "artifactType" not in document and config.get("mediaType") in _IMAGE_CONFIGS
    return _Shape("image" if runnable else "artifact", [], subject, size)


def _children(index: dict[str, Any]) -> list[Child]:
    """The manifests an index lists (parse_manifest checked their descriptors), with platforms."""
    return [
        Child(digest=entry["digest"], platform=_platform(entry.get("platform")))
        for entry in index["manifests"]
    ]


def _platform(platform: object) -> str | None:
    if not isinstance(platform, dict):
        return None
    parts = [platform.get("os"), platform.get("architecture"), platform.get("variant")]
    if "unknown" in parts[:2] or not all(isinstance(part, str) and part for part in parts[:2]):
        return None  # an attestation (buildx marks its manifests unknown/unknown)
    return "/".join(part for part in parts if isinstance(part, str) and part)


def _render(
    registry: RegistryRecord, repository: str, artifact: ArtifactRecord, referrers: list[ReferrerRecord]
) -> Artifact:
    shape = _shape(artifact)
    properties = ArtifactProperties(
        digest=artifact.digest,
        media_type=artifact.media_type,
        artifact_type=artifact.artifact_type,
        kind=shape.kind,
        platforms=shape.platforms,
        children=shape.children,
        subject=shape.subject,
        referrers=[Referrer(digest=r.digest, artifact_type=r.artifact_type, size=r.size) for r in referrers],
        tags=list(artifact.tags),
        size=shape.size,
    )
    metadata = ArtifactMetadata(
        created_at=timestamp(artifact.created_at),
        pushed_at=timestamp(artifact.pushed_at or artifact.created_at),
    )
    location = href("registries", registry.id, "repositories", repository, "artifacts", artifact.digest)
    return Artifact(id=artifact.digest, href=location, metadata=metadata, properties=properties)


async def _repository_id(services: Services, registry: RegistryRecord, name: str) -> int:
    await usage_of(services, registry, name)  # 404 unless it has content
    repository_id = await services.registries.metadata.content.get_repository_id(registry.id, name)
    if repository_id is None:
        raise not_found("repository")
    return repository_id


async def _rendered(
    services: Services, registry: RegistryRecord, name: str, repository_id: int, rows: list[ArtifactRecord]
) -> list[Artifact]:
    views = services.registries.metadata.views
    referrers = await views.referrers_by_subject(repository_id, [row.digest for row in rows])
    return [_render(registry, name, row, referrers[row.digest]) for row in rows]


async def list_artifacts(services: Services, call: Call, query: ArtifactCursor) -> web.Response:
    registry = await call.owned_registry(services)
    name = repository_name(call)
    limit, after = query.limit, query.after
    repository_id = await _repository_id(services, registry, name)
    views = services.registries.metadata.views
    rows = await views.list_artifacts(repository_id, after or "", limit + 1)
    total = await views.count_artifacts(repository_id)
    more, rows = len(rows) > limit, rows[:limit]
    path = href("registries", registry.id, "repositories", name, "artifacts")
    next_href = next_link(path, limit, cursor=rows[-1].digest) if more else None
    items = await _rendered(services, registry, name, repository_id, rows)
    return json_response(ArtifactList(items=items, total=total, limit=limit, next=next_href))


def _digest(call: Call) -> str:
    reference = call.params["digest"]
    if not is_digest(reference):
        raise invalid(f"{reference!r} is not a digest: expected sha256:<64 hex> or sha512:<128 hex>")
    return reference


async def get_artifact(services: Services, call: Call) -> web.Response:
    registry = await call.owned_registry(services)
    name = repository_name(call)
    digest = _digest(call)
    repository_id = await _repository_id(services, registry, name)
    artifact = await services.registries.metadata.views.get_artifact(repository_id, digest)
    if artifact is None:
        raise not_found("artifact")
    (shown,) = await _rendered(services, registry, name, repository_id, [artifact])
    return json_response(shown)


async def _domain(services: Services, registry: RegistryRecord) -> Registry:
    domain = await services.registries.resolve(registry.name)
    if domain is None:  # deleted meanwhile
        raise not_found("registry")
    return domain


async def _delete(services: Services, call: Call, reference: str, what: str) -> web.Response:
    """A manifest (by digest, with the tags on it) or a tag, as `DELETE /v2/…/manifests/…` does."""
    registry = await call.owned_registry(services)
    name = repository_name(call)
    await usage_of(services, registry, name)
    try:
        await (await _domain(services, registry)).delete_manifest(name, reference)
    except RegistryError as error:
        if error.status == 404:
            raise not_found(what) from None
        raise
    target = f"registries/{registry.id}/repositories/{name}/{what}s/{reference}"
    detail = {"registry": registry.name, "repository": name, what: reference}
    await call.audit(services, f"{what}.delete", target, detail)
    return web.Response(status=204)


async def delete_artifact(services: Services, call: Call) -> web.Response:
    return await _delete(services, call, _digest(call), "artifact")


async def delete_tag(services: Services, call: Call) -> web.Response:
    tag = call.params["tag"]
    if not is_valid_tag(tag):
        raise invalid(f"{tag!r} is not a tag: up to 128 letters, digits, _ . -, not starting with . or -")
    return await _delete(services, call, tag, "tag")
