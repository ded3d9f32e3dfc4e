"""Blobs in an S3-compatible object store (Ceph RGW, MinIO, AWS S3) through aiobotocore.

The driver itself: the client's setup, and the BlobDriver interface over the parts it composes.
Reads, deletes, listing and redirects are a call or two each and live here; the rest each have
a module of their own:

    s3_uploads.py   uploads: parts and tails staged without copies, commit, abort, orphans
    s3_parts.py     an upload request's body, held in an mmap and sent without copies
    s3_body.py      large GET bodies taken over from aiohttp (splice, recv_into)
    s3_requests.py  what every request carries, failures translated, the circuit breaker
    s3_sse.py       server-side encryption parameters; the SSE-C key kept out of logs
    s3_check.py     the startup check of the bucket and of the encryption
    s3_stats.py     every S3 call counted and timed for /metrics
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import AsyncExitStack
from functools import partial
from typing import TYPE_CHECKING, Any

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.handlers import add_expect_header

from ..config import MIB
from ..health import StoreHealth
from .base import BlobDriver, ByteChunks, DriverState, Piece, ReadChunks, SocketStretch
from .s3_body import can_take_over, take_over
from .s3_check import S3StoreError, check_store
from .s3_requests import S3Bucket
from .s3_sse import REDACT, Sse
from .s3_stats import S3Stats
from .s3_uploads import MAX_PARTS, S3Uploads

if TYPE_CHECKING:
    from ..config import S3Config

__all__ = ["READ_BUFFER", "TAKE_OVER_MIN", "S3BlobDriver", "S3StoreError"]

# what may be buffered of a blob being read before the socket is paused (aiohttp's default is
# 128 KiB): fewer pauses; also the size of the buffers of a taken-over body (s3_body.py)
READ_BUFFER = MIB
TAKE_OVER_MIN = 8 * MIB  # reads from this size are received without aiohttp (s3_body.py)
# a store that is down must turn into a 503, not a hung request; but a store (or a gateway)
# busy with a pull storm may take a few seconds to accept: 2 s gave 503s to nodes of a storm
CONNECT_TIMEOUT = 5.0
REDIRECT_SECONDS = 300  # lifetime of the presigned URL of a redirected blob GET
ATTEMPTS = 3  # botocore "standard" retries: throttling, 5xx, connection errors, with backoff


class S3BlobDriver(BlobDriver):
    name = "s3"

    def __init__(self, client: Any, stack: AsyncExitStack, config: S3Config, sse: Sse) -> None:
        self._stack = stack
        self.stats = S3Stats()  # for /metrics
        self.stats.watch(client)
        self.max_blob_size = MAX_PARTS * config.part_size
        self._redirect = config.redirect
        self._timeout = config.timeout
        self.health = StoreHealth("blobs", "requests that need blob bytes get 503 until S3 answers")
        self._s3 = S3Bucket(client, config.bucket, sse, self.health)
        self._uploads = S3Uploads(self._s3, config.part_size)

    @classmethod
    async def open(cls, config: S3Config) -> S3BlobDriver:
        """A driver checked against the store: bucket created if missing, SSE round-tripped.
        (What the settings alone can rule out, `S3Config` did.)"""
        sse = Sse.from_config(config)
        client_config = AioConfig(
            signature_version="s3v4",
            # no SHA-256 of bodies on the event loop: ContentMD5 (hashed in a thread) guards them
            s3={"addressing_style": config.addressing_style, "payload_signing_enabled": False},
            retries={"mode": "standard", "total_max_attempts": ATTEMPTS},
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=config.timeout,
            max_pool_connections=config.pool_size,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        stack = AsyncExitStack()
        client = await stack.enter_async_context(
            get_session().create_client(
                "s3",
                endpoint_url=config.endpoint_url,
                region_name=config.region,
                config=client_config,
            )
        )
        # no `Expect: 100-continue` on bodies: a round trip per part for nothing here, and
        # aiohttp's client leaves its body writer's error unretrieved when the store drops the
        # connection before the headers went out (an ERROR with a traceback during S3 outages)
        client.meta.events.unregister("before-call.s3", add_expect_header)
        REDACT.watch(sse.secrets)
        driver = cls(client, stack, config, sse)
        try:
            await check_store(driver._s3, driver)
        except BaseException:
            await stack.aclose()
            raise
        return driver

    async def close(self) -> None:
        await self._stack.aclose()

    # --- uploads (s3_uploads.py) -----------------------------------------------------------

    async def start_upload(self, upload_id: str) -> DriverState:
        return self._uploads.start(upload_id)

    async def write_upload(
        self, upload_id: str, state: DriverState, offset: int, chunks: ByteChunks
    ) -> DriverState:
        return await self._uploads.write(upload_id, state, offset, chunks)

    async def commit_upload(self, upload_id: str, state: DriverState, size: int, key: str) -> str:
        # `key` (content-derived) is not used: S3 has no rename, the blob stays where it was written
        return await self._uploads.commit(upload_id, state, size)

    async def abort_upload(self, upload_id: str, state: DriverState) -> None:
        await self._uploads.abort(upload_id, state)

    async def reap_orphans(self, orphaned: Callable[[str], Awaitable[bool]], before: float) -> int:
        return await self._uploads.reap_orphans(orphaned, before)

    # --- blobs -----------------------------------------------------------------------------

    async def read(self, location: str, start: int, end: int) -> ReadChunks:
        if start >= end:
            await self._s3.head(location)  # FileNotFoundError if it is not there
            return
        with self._s3.guard(location):
            response = await self._s3.client.get_object(
                Bucket=self._s3.name, Key=location, Range=f"bytes={start}-{end - 1}", **self._s3.sse.request
            )
        body = response["Body"]
        try:
            # closed on every way out: a taken-over connection is closed with its generator
            async with contextlib.aclosing(self._body(body.raw_stream, end - start, location)) as pieces:
                remaining = end - start
                while remaining:
                    with self._s3.guard(location, answered=True):
                        piece = await anext(pieces, b"")
                    if not piece:
                        raise OSError(f"blob {location} is shorter than recorded")
                    remaining -= len(piece)
                    yield piece
        finally:
            body.close()

    def _body(
        self, raw: aiohttp.ClientResponse, length: int, location: str
    ) -> AsyncGenerator[Piece | SocketStretch, None]:
        if length >= TAKE_OVER_MIN and can_take_over(raw, length):
            guard = partial(self._s3.guard, location, answered=True)
            return take_over(raw, length, READ_BUFFER, self._timeout, guard)
        return _chunks(raw.content)

    async def delete(self, location: str) -> None:
        with self._s3.guard(location):
            await self._s3.client.delete_object(Bucket=self._s3.name, Key=location)

    async def delete_many(self, locations: list[str]) -> None:
        # DeleteObjects: up to 1000 keys a request; a key that fails stays queued (raise)
        for start in range(0, len(locations), 1000):
            batch = [{"Key": key} for key in locations[start : start + 1000]]
            with self._s3.guard("blobs"):
                response = await self._s3.client.delete_objects(
                    Bucket=self._s3.name, Delete={"Objects": batch, "Quiet": True}
                )
            errors = [e for e in response.get("Errors", ()) if e.get("Code") != "NoSuchKey"]
            if errors:
                raise OSError(f"S3 could not delete {len(errors)} blobs, e.g. {errors[0]}")

    async def list_blobs(self, after: str, limit: int) -> list[tuple[str, float]]:
        with self._s3.guard("blobs"):
            response = await self._s3.client.list_objects_v2(
                Bucket=self._s3.name, Prefix="blobs/", StartAfter=max(after, "blobs/"), MaxKeys=limit
            )
        return [(item["Key"], item["LastModified"].timestamp()) for item in response.get("Contents", ())]

    async def check(self) -> None:
        with self._s3.guard(self._s3.name):
            await self._s3.client.head_bucket(Bucket=self._s3.name)

    async def redirect_url(self, location: str) -> str | None:
        return await self.presigned_url(location, REDIRECT_SECONDS) if self._redirect else None

    async def presigned_url(self, location: str, expires: int) -> str:
        """A URL that lets a client GET the blob straight from the store for `expires` seconds."""
        if self._s3.sse.mode == "sse-c":
            raise ValueError("presigned URLs cannot carry an SSE-C key")
        url: str = await self._s3.client.generate_presigned_url(
            "get_object", Params={"Bucket": self._s3.name, "Key": location}, ExpiresIn=expires
        )
        return url

    async def size(self, location: str) -> int:
        """The stored size of a blob (HeadObject); FileNotFoundError if it is not there."""
        return await self._s3.head(location)


async def _chunks(stream: aiohttp.StreamReader) -> AsyncGenerator[bytes, None]:
    """A body's pieces as the socket gave them (no joins), b"" at its end."""
    stream.set_read_chunk_size(READ_BUFFER)
    while True:
        piece, _ = await stream.readchunk()
        yield piece
        if not piece:
            return
