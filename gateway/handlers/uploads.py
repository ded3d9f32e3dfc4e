"""Blob uploads: POST `/v2/<name>/blobs/uploads/` (session, monolithic, mount) and
PATCH / PUT / GET / DELETE `/v2/<name>/blobs/uploads/<id>`."""

from __future__ import annotations

from aiohttp import web

from ocigate.auth.scopes import REPOSITORY, Scope
from ocigate.storage.digest import Digest
from ocigate.storage.errors import DigestInvalid
from ocigate.storage.metadata import BlobRecord, UploadRecord
from ocigate.storage.names import is_valid_repository_name
from ocigate.storage.registry import Registry

from ..authz import ACCESS
from ..http import body_chunks, has_body, parse_content_range

_PULL = frozenset({"pull"})


def _created(repository: str, blob: BlobRecord) -> web.Response:
    return web.Response(
        status=201,
        headers={
            "Location": f"/v2/{repository}/blobs/{blob.digest}",
            "Docker-Content-Digest": blob.digest,
        },
    )


def _in_progress(repository: str, upload: UploadRecord, status: int = 202) -> web.Response:
    # OCI spec: Range is inclusive, and "0-0" when nothing is stored yet (as Distribution does)
    last = max(upload.offset - 1, 0)
    return web.Response(
        status=status,
        headers={
            "Location": f"/v2/{repository}/blobs/uploads/{upload.id}",
            "Range": f"0-{last}",
            "Docker-Upload-UUID": upload.id,
        },
    )


def _digest_parameter(request: web.Request) -> Digest:
    value = request.query.get("digest")
    if not value:
        raise DigestInvalid(message="the digest query parameter is required")
    return Digest.parse(value)


async def start(request: web.Request, registry: Registry, repository: str, _: str) -> web.StreamResponse:
    query = request.query
    if "mount" in query:
        digest = Digest.parse(query["mount"])
        source = query.get("from", "")
        # SECURITY: mounting reads the source, so the caller must be allowed to pull it
        if is_valid_repository_name(source) and request[ACCESS].allows(Scope(REPOSITORY, source, _PULL)):
            mounted = await registry.mount_blob(repository, digest, source)
            if mounted is not None:
                return _created(repository, mounted)
        # OCI spec: when the mount cannot be done, fall back to an ordinary upload session
    elif "digest" in query:
        blob = await registry.upload_blob(
            repository, _digest_parameter(request), body_chunks(request), request.content_length
        )
        return _created(repository, blob)
    upload = await registry.start_upload(repository)
    return _in_progress(repository, upload)


async def patch(
    request: web.Request, registry: Registry, repository: str, upload_id: str
) -> web.StreamResponse:
    content_range = parse_content_range(request.headers.get("Content-Range"))
    start, end = content_range if content_range else (None, None)
    upload = await registry.uploads.append(
        registry.id,
        repository,
        upload_id,
        body_chunks(request),
        start=start,
        end=end,
        length=request.content_length,
    )
    return _in_progress(repository, upload)


async def put(
    request: web.Request, registry: Registry, repository: str, upload_id: str
) -> web.StreamResponse:
    digest = _digest_parameter(request)
    chunks = body_chunks(request) if has_body(request) else None
    blob = await registry.finish_upload(repository, upload_id, digest, chunks, request.content_length)
    return _created(repository, blob)


async def status(
    request: web.Request, registry: Registry, repository: str, upload_id: str
) -> web.StreamResponse:
    upload = await registry.uploads.get(registry.id, repository, upload_id)
    return _in_progress(repository, upload, status=204)


async def cancel(
    request: web.Request, registry: Registry, repository: str, upload_id: str
) -> web.StreamResponse:
    await registry.uploads.cancel(registry.id, repository, upload_id)
    return web.Response(status=204)
