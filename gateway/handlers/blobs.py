"""`/v2/<name>/blobs/<digest>`: HEAD, GET (with Range), DELETE."""

from __future__ import annotations

from aiohttp import web

from storage.digest import Digest
from storage.registry import Registry

from ..http import parse_read_range


async def head_or_get(
    request: web.Request, registry: Registry, repository: str, reference: str
) -> web.StreamResponse:
    digest = Digest.parse(reference)
    blob = await registry.stat_blob(repository, digest)
    byte_range = parse_read_range(request.headers.get("Range"), blob.size)
    headers = {
        "Docker-Content-Digest": blob.digest,
        "Accept-Ranges": "bytes",
        "Content-Type": "application/octet-stream",
        "ETag": f'"{blob.digest}"',
        "Cache-Control": "max-age=31536000",  # content-addressed: never changes
    }
    start, end, status = 0, blob.size, 200
    if byte_range is not None:
        start, end, status = byte_range.start, byte_range.end, 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{blob.size}"
    headers["Content-Length"] = str(end - start)
    response = web.StreamResponse(status=status, headers=headers)
    if request.method == "HEAD" or start == end:
        await response.prepare(request)
        return response
    chunks = registry.read_blob(blob, start, end)
    await response.prepare(request)
    async for chunk in chunks:
        await response.write(chunk)
    await response.write_eof()
    return response


async def delete(
    request: web.Request, registry: Registry, repository: str, reference: str
) -> web.StreamResponse:
    await registry.delete_blob(repository, Digest.parse(reference))
    return web.Response(status=202)
