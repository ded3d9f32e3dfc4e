"""`/v2/<name>/manifests/<reference>`: GET, HEAD, PUT, DELETE."""

from __future__ import annotations

from functools import lru_cache

from aiohttp import hdrs, web
from multidict import CIMultiDict

from ocigate.storage.errors import ManifestTooLarge
from ocigate.storage.registry import MAX_MANIFEST_BYTES, Registry

from ..authz import ACCESS, AUTHENTICATOR
from ..http import body_chunks
from ..usage import record_pull, record_push


async def head_or_get(
    request: web.Request, registry: Registry, repository: str, reference: str
) -> web.StreamResponse:
    manifest = await registry.get_manifest(repository, reference)
    if request.method == "GET":
        record_pull(request, registry.id, repository)
    # Always the stored bytes and media type: clients list what they can read, and containerd
    # sends `*/*`; converting or refusing would break digests that clients pinned.
    headers = _headers(manifest.digest, manifest.media_type, manifest.subject)
    return web.Response(body=manifest.content, headers=headers)  # Response copies them


@lru_cache(maxsize=1024)  # the hot manifests' headers, built once (a copy per response is cheap)
def _headers(digest: str, media_type: str, subject: str | None) -> CIMultiDict[str]:
    headers = CIMultiDict({"Docker-Content-Digest": digest, "ETag": f'"{digest}"'})
    if subject:
        headers["OCI-Subject"] = subject
    headers[hdrs.CONTENT_TYPE] = media_type
    return headers


async def put(
    request: web.Request, registry: Registry, repository: str, reference: str
) -> web.StreamResponse:
    content = await _read_limited(request, MAX_MANIFEST_BYTES)
    one_time_token = request[ACCESS].one_time_token
    try:
        manifest = await registry.put_manifest(
            repository, reference, content, request.headers.get("Content-Type"), one_time_token=one_time_token
        )
    finally:
        if one_time_token is not None:  # its tag may be written now: its next request must see it
            request.config_dict[AUTHENTICATOR].token_spent(one_time_token)
    record_push(request, registry.id, repository)
    headers = {
        "Location": f"/v2/{repository}/manifests/{manifest.digest}",
        "Docker-Content-Digest": manifest.digest,
    }
    if manifest.subject:
        headers["OCI-Subject"] = manifest.subject  # OCI spec 1.1: the registry supports referrers
    return web.Response(status=201, headers=headers)


async def delete(
    request: web.Request, registry: Registry, repository: str, reference: str
) -> web.StreamResponse:
    await registry.delete_manifest(repository, reference)
    return web.Response(status=202)


async def _read_limited(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise ManifestTooLarge({"limit": limit, "length": request.content_length})
    body = bytearray()
    async for chunk in body_chunks(request):
        body += chunk
        if len(body) > limit:
            raise ManifestTooLarge({"limit": limit})
    return bytes(body)
