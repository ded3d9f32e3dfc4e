"""`/v2/<name>/blobs/<digest>`: HEAD, GET (with Range), DELETE."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web

from ocigate.storage.blobs import Piece, SocketStretch
from ocigate.storage.digest import Digest
from ocigate.storage.errors import StorageUnavailable
from ocigate.storage.registry import Registry

from ..http import parse_read_range
from ..request_id import HEADER as REQUEST_ID_HEADER
from ..request_id import request_id
from ..request_stats import SPLICED

log = logging.getLogger("ocigate.gateway")


async def head_or_get(
    request: web.Request, registry: Registry, repository: str, reference: str
) -> web.StreamResponse:
    digest = Digest.parse(reference)
    blob = await registry.stat_blob(repository, digest)
    if request.method == "GET":
        url = await registry.blob_url(blob)
        if url is not None:  # the client re-sends its Range header to the store
            return web.Response(status=307, headers={"Location": url, "Docker-Content-Digest": blob.digest})
    byte_range = parse_read_range(request.headers.get("Range"), blob.size)
    headers = {
        "Docker-Content-Digest": blob.digest,
        "Accept-Ranges": "bytes",
        "Content-Type": "application/octet-stream",
        "ETag": f'"{blob.digest}"',
        "Cache-Control": "max-age=31536000",  # content-addressed: never changes
        REQUEST_ID_HEADER: request_id(request),  # sent before errors.py's middleware sees it
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
    # closed on every way out: a client gone mid-blob must not leave the store's connection open
    async with contextlib.aclosing(registry.read_blob(blob, start, end)) as chunks:
        # The first chunk is read before the status line goes out, so a store that is down or a
        # blob whose bytes are gone still gets a proper error response instead of a cut-off 200.
        first = await anext(chunks, b"")
        await response.prepare(request)
        try:
            await _send(request, response, first)
            del first  # let go of each chunk before the next: the driver may reuse its buffer
            async for chunk in chunks:
                await _send(request, response, chunk)
                del chunk
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception as exc:
            # The status is out: the only honest signal left is to cut the connection, so the
            # client sees a short body (and its digest check fails) rather than wrong bytes.
            if isinstance(exc, StorageUnavailable):  # the store logs its outages once each
                log.info("blob %s cut mid-stream: %s", blob.digest, exc.message)
            else:
                log.exception("blob %s failed mid-stream", blob.digest)
            if request.transport is not None:
                request.transport.close()
            return response
    await response.write_eof()
    return response


async def _send(request: web.Request, response: web.StreamResponse, chunk: Piece | SocketStretch) -> None:
    if isinstance(chunk, (bytes, bytearray, memoryview)):  # concrete types: no ABC check per chunk
        await response.write(chunk)
        return
    await response.write(b"")  # the status line and headers, if still held back by aiohttp
    transport = request.transport
    # the kernel moves the bytes only onto a plain TCP connection holding nothing unsent
    # (aiohttp's writes keep no count of them: access logs show the bytes written by aiohttp)
    if (
        transport is not None
        and transport.get_extra_info("ssl_object") is None
        and (sock := transport.get_extra_info("socket")) is not None
        and transport.get_write_buffer_size() == 0
        and await chunk.splice_to(sock.fileno())
    ):
        request[SPLICED] = request.get(SPLICED, 0) + len(chunk)
        return
    async for piece in chunk:
        await response.write(piece)


async def delete(
    request: web.Request, registry: Registry, repository: str, reference: str
) -> web.StreamResponse:
    await registry.delete_blob(repository, Digest.parse(reference))
    return web.Response(status=202)
