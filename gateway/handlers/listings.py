"""Listings: `/v2/`, `/v2/_catalog`, `/v2/<name>/tags/list`, `/v2/<name>/referrers/<digest>`."""

from __future__ import annotations

import orjson
from aiohttp import web

from ocigate.auth.scopes import pullable
from ocigate.storage.digest import Digest
from ocigate.storage.manifests import OCI_INDEX
from ocigate.storage.registry import Page, Registry

from ..authz import ACCESS
from ..http import next_link, page_parameters


async def base(request: web.Request, registry: Registry, repository: str, _: str) -> web.StreamResponse:
    return web.Response(body=b"{}", content_type="application/json")


async def tags(request: web.Request, registry: Registry, repository: str, _: str) -> web.StreamResponse:
    last, limit = page_parameters(request)
    page = await registry.list_tags(repository, last, limit if limit is not None else 1 << 62)
    return _page_response(
        f"/v2/{repository}/tags/list", {"name": repository, "tags": page.items}, page, limit
    )


async def catalog(request: web.Request, registry: Registry, repository: str, _: str) -> web.StreamResponse:
    """The registry's repositories; a registry token sees those its scopes let it pull."""
    last, limit = page_parameters(request)
    principal = request[ACCESS].principal
    only = pullable(principal.grants) if principal is not None else None
    page = await registry.catalog(last, limit if limit is not None else 1 << 62, only)
    return _page_response("/v2/_catalog", {"repositories": page.items}, page, limit)


def _page_response(path: str, document: dict[str, object], page: Page, limit: int | None) -> web.Response:
    """`path` is ours (a validated name at most), never the request's: it goes into `Link`."""
    response = web.Response(body=orjson.dumps(document), content_type="application/json")
    if page.has_more and limit and page.items:
        response.headers["Link"] = next_link(path, limit, page.items[-1])
    return response


async def referrers(
    request: web.Request, registry: Registry, repository: str, reference: str
) -> web.StreamResponse:
    digest = Digest.parse(reference)
    artifact_type = request.query.get("artifactType") or None
    found = await registry.referrers(repository, digest, artifact_type)
    descriptors = []
    for referrer in found:
        descriptor: dict[str, object] = {
            "mediaType": referrer.media_type,
            "digest": referrer.digest,
            "size": referrer.size,
        }
        if referrer.artifact_type:
            descriptor["artifactType"] = referrer.artifact_type
        if referrer.annotations:
            descriptor["annotations"] = orjson.loads(referrer.annotations)
        descriptors.append(descriptor)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}
    response = web.Response(body=orjson.dumps(index), content_type=OCI_INDEX)
    if artifact_type is not None:
        response.headers["OCI-Filters-Applied"] = "artifactType"
    return response
