"""Blobs in an S3-compatible object store (Ceph RGW, MinIO, AWS S3) through aiobotocore.

S3 can neither append nor rename, so an upload is laid out to be written once, never copied:

    blobs/<upload id>            the blob, when it took parts (the multipart upload's target)
    blobs/<upload id>/<token>    a *tail*: the bytes after the last part, one new object per
                                 request; a blob smaller than a part is just its tail, committed
                                 where it lies

The driver state the domain keeps between requests (JSON; any replica may continue it) names
the multipart UploadId, the parts so far as [number, ETag, size], the tail's key and size, and
the superseded tail still to delete: never bytes. A request reads the tail back (less than one
part), appends its body, uploads each full part and leaves the rest as a new tail under a new
key; new parts are numbered after every part of the input state. Nothing the input state names
is overwritten, so it stays valid whatever happens to the request, and a retry overwrites what a
failed attempt left. Tails and multipart uploads of failed attempts are swept by prefix at
commit and abort. Memory per upload: one part buffer plus the chunk being copied into it.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import aiohttp
import aiohttp.payload
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from ..config import MIB, MIN_PART
from ..errors import BlobUploadInvalid, StorageUnavailable
from ..health import StoreHealth
from .base import BlobDriver, ByteChunks, DriverState, Piece, ReadChunks, SocketStretch
from .s3_body import can_take_over, take_over
from .s3_parts import PartBody, PartBuffer, md5, md5_base64
from .s3_requests import S3Bucket, error_code
from .s3_sse import REDACT, Sse
from .s3_stats import S3Stats

if TYPE_CHECKING:
    from ..config import S3Config

MAX_PARTS = 10_000
READ_CHUNK = MIB
# what may be buffered of a blob being read before the socket is paused (aiohttp's default is
# 128 KiB): fewer pauses; also the size of the buffers of a taken-over body (s3_body.py)
READ_BUFFER = MIB
TAKE_OVER_MIN = 8 * MIB  # reads from this size are received without aiohttp (s3_body.py)
# a store that is down must turn into a 503, not a hung request; but a store (or a gateway)
# busy with a pull storm may take a few seconds to accept: 2 s gave 503s to nodes of a storm
CONNECT_TIMEOUT = 5.0
REDIRECT_SECONDS = 300  # lifetime of the presigned URL of a redirected blob GET
ATTEMPTS = 3  # botocore "standard" retries: throttling, 5xx, connection errors, with backoff

log = logging.getLogger(__name__)


class S3StoreError(RuntimeError):
    """The configured S3 store cannot work as asked (raised at startup, says why)."""


class S3BlobDriver(BlobDriver):
    name = "s3"

    def __init__(self, client: Any, stack: AsyncExitStack, config: S3Config, sse: Sse) -> None:
        self._stack = stack
        self.stats = S3Stats()  # for /metrics
        self.stats.watch(client)
        self._part_size = config.part_size
        self.max_blob_size = MAX_PARTS * config.part_size
        self._redirect = config.redirect
        self._timeout = config.timeout
        self.health = StoreHealth("blobs", "requests that need blob bytes get 503 until S3 answers")
        self._s3 = S3Bucket(client, config.bucket, sse, self.health)

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
        REDACT.watch(sse.secrets)
        driver = cls(client, stack, config, sse)
        try:
            await driver._check_store()
        except BaseException:
            await stack.aclose()
            raise
        return driver

    async def close(self) -> None:
        await self._stack.aclose()

    # --- uploads ---------------------------------------------------------------------------

    async def start_upload(self, upload_id: str) -> DriverState:
        return _Upload().dump()  # nothing to create until bytes arrive

    async def write_upload(
        self, upload_id: str, state: DriverState, offset: int, chunks: ByteChunks
    ) -> DriverState:
        previous = _Upload.load(state)
        parts, keep = self._rewind(upload_id, previous, offset)
        number = max((part[0] for part in previous.parts), default=0) + 1
        mpu = previous.mpu
        buffer = PartBuffer(self._part_size)
        try:
            loaded = keep == 0  # the tail is read back only once there is more to add to it
            received = 0
            async for chunk in chunks:
                if not chunk:
                    continue
                if not loaded:
                    await self._read_tail(previous, keep, buffer)
                    loaded = True
                received += len(chunk)
                view = memoryview(chunk)
                while view:
                    view = buffer.fill(view)
                    if buffer.full:
                        mpu = mpu or await self._create_multipart(upload_id)
                        parts.append(await self._upload_part(upload_id, mpu, number, buffer))
                        number += 1
                        buffer.clear()
            if received == 0 and offset == previous.size:
                return state  # an empty request changes nothing
            if not loaded:  # a rewind with nothing after it
                await self._read_tail(previous, keep, buffer)
            tail: str | None = None
            size = buffer.size
            if size >= MIN_PART and (mpu is not None or offset > 0):
                # big enough to be a part, and this is not a first request that may be all of a
                # small blob (that one stays a single PutObject, committed in place)
                mpu = mpu or await self._create_multipart(upload_id)
                parts.append(await self._upload_part(upload_id, mpu, number, buffer))
            elif size:
                tail = f"{_blob_key(upload_id)}/{secrets.token_hex(8)}"
                await self._put(tail, buffer.body())
        finally:
            buffer.close()
        if previous.stale:
            await self._delete_quietly([previous.stale])
        stale = previous.tail if previous.tail != tail else None
        return _Upload(mpu, tuple(parts), tail, size if tail else 0, stale).dump()

    async def commit_upload(self, upload_id: str, state: DriverState, size: int, key: str) -> str:
        # `key` (content-derived) is not used: S3 has no rename, the blob stays where it was written
        upload = _Upload.load(state)
        if upload.size != size:
            raise OSError(f"staged upload {upload_id} is not {size} bytes ({upload.size} staged)")
        if not upload.parts:
            location = upload.tail or _blob_key(upload_id)
            if upload.tail is None:  # the empty blob
                await self._put(location, PartBody(memoryview(b"")))
        else:
            assert upload.mpu is not None  # parts exist only inside a multipart upload
            location = _blob_key(upload_id)
            parts = list(upload.parts)
            if upload.tail is not None:  # the tail becomes the last part, copied inside the store
                number = max(part[0] for part in parts) + 1
                parts.append(await self._copy_part(upload_id, upload.mpu, number, upload.tail))
            await self._complete(upload_id, upload.mpu, parts)
            # the ETag CompleteMultipartUpload answers is not to be trusted (Ceph sends it empty)
            stored = await self._s3.head(location)
            if stored != size:
                raise OSError(f"S3 holds {stored} bytes for upload {upload_id}, expected {size}")
        await self._sweep(upload_id, keep=location, multipart=upload.mpu is not None)
        return location

    async def abort_upload(self, upload_id: str, state: DriverState) -> None:
        upload = _Upload.load(state)
        if upload.mpu is not None:
            await self._abort_multipart(_blob_key(upload_id), upload.mpu)
        await self._sweep(upload_id, keep=None, multipart=True)

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

    async def reap_orphans(self, orphaned: Callable[[str], Awaitable[bool]], before: float) -> int:
        # Only multipart uploads still open: aborting one never touches a committed object. Tails
        # cannot be told from committed small blobs by their keys, so they wait for their session.
        stale: list[tuple[str, str]] = []
        with self._s3.guard("multipart uploads"):
            paginator = self._s3.client.get_paginator("list_multipart_uploads")
            async for page in paginator.paginate(Bucket=self._s3.name, Prefix="blobs/"):
                for item in page.get("Uploads", ()):
                    if item["Initiated"].timestamp() < before:
                        stale.append((item["Key"], item["UploadId"]))
        reaped = 0
        for key, mpu in stale:
            if await orphaned(key.removeprefix("blobs/")):
                await self._abort_multipart(key, mpu)
                reaped += 1
        return reaped

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

    def _rewind(self, upload_id: str, upload: _Upload, offset: int) -> tuple[list[tuple[int, str, int]], int]:
        """The parts kept when writing at `offset`, and how many tail bytes to keep."""
        if offset > upload.size:
            raise OSError(f"upload {upload_id}: offset {offset} is past the {upload.size} staged bytes")
        parts: list[tuple[int, str, int]] = []
        done = 0
        for part in upload.parts:
            if done + part[2] > offset:
                break
            parts.append(part)
            done += part[2]
        keep = offset - done
        if len(parts) < len(upload.parts) and keep:
            raise OSError(f"upload {upload_id}: cannot rewind to {offset}, inside an uploaded part")
        return parts, keep

    async def _read_tail(self, upload: _Upload, size: int, buffer: PartBuffer) -> None:
        """Append the first `size` bytes of the upload's tail (less than a part) to `buffer`."""
        key = upload.tail
        assert key is not None  # only called to keep bytes of an existing tail
        start = buffer.size
        with self._s3.guard(key, concurrent=True):
            response = await self._s3.client.get_object(
                Bucket=self._s3.name, Key=key, Range=f"bytes=0-{size - 1}", **self._s3.sse.request
            )
            async with response["Body"] as body:
                async for piece in body.iter_chunks(READ_CHUNK):
                    if buffer.fill(memoryview(piece)):
                        break  # a part's worth: not the tail this state names
        if buffer.size - start != size:
            raise BlobUploadInvalid(message="upload staging changed concurrently; retry the upload")

    async def _put(self, key: str, data: PartBody) -> None:
        digest = await md5(data.view)
        with self._s3.guard(key):
            await self._s3.client.put_object(
                Bucket=self._s3.name, Key=key, Body=data, ContentMD5=digest, **self._s3.sse.write
            )

    async def _create_multipart(self, upload_id: str) -> str:
        with self._s3.guard(upload_id):
            response = await self._s3.client.create_multipart_upload(
                Bucket=self._s3.name, Key=_blob_key(upload_id), **self._s3.sse.write
            )
        return str(response["UploadId"])

    async def _upload_part(
        self, upload_id: str, mpu: str, number: int, buffer: PartBuffer
    ) -> tuple[int, str, int]:
        if number > MAX_PARTS:
            raise BlobUploadInvalid(message=f"upload exceeds {MAX_PARTS} parts of the configured part size")
        data = buffer.body()
        digest = await md5(data.view)
        with self._s3.guard(upload_id, concurrent=True):
            response = await self._s3.client.upload_part(
                Bucket=self._s3.name,
                Key=_blob_key(upload_id),
                UploadId=mpu,
                PartNumber=number,
                Body=data,
                ContentMD5=digest,
                **self._s3.sse.request,
            )
        return number, str(response["ETag"]), len(data)

    async def _copy_part(self, upload_id: str, mpu: str, number: int, source: str) -> tuple[int, str, int]:
        # UploadPartCopy, not CopyObject: Ceph answers CopyObject of an encrypted source with 501
        with self._s3.guard(upload_id, concurrent=True):
            response = await self._s3.client.upload_part_copy(
                Bucket=self._s3.name,
                Key=_blob_key(upload_id),
                UploadId=mpu,
                PartNumber=number,
                CopySource={"Bucket": self._s3.name, "Key": source},
                **self._s3.sse.request,
                **self._s3.sse.copy_source,
            )
        return number, str(response["CopyPartResult"]["ETag"]), 0  # size: only Complete reads it

    async def _complete(self, upload_id: str, mpu: str, parts: list[tuple[int, str, int]]) -> None:
        with self._s3.guard(upload_id, concurrent=True):
            await self._s3.client.complete_multipart_upload(
                Bucket=self._s3.name,
                Key=_blob_key(upload_id),
                UploadId=mpu,
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag} for n, etag, _ in parts]},
            )

    async def _abort_multipart(self, key: str, mpu: str) -> None:
        with contextlib.suppress(FileNotFoundError), self._s3.guard(key):
            await self._s3.client.abort_multipart_upload(Bucket=self._s3.name, Key=key, UploadId=mpu)

    async def _sweep(self, upload_id: str, *, keep: str | None, multipart: bool) -> None:
        """Delete what an upload left besides `keep`: tails of failed attempts, stray multiparts."""
        prefix = _blob_key(upload_id)
        keys: list[str] = []
        with self._s3.guard(prefix):
            paginator = self._s3.client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=self._s3.name, Prefix=prefix):
                keys += [item["Key"] for item in page.get("Contents", ()) if item["Key"] != keep]
        await self._delete_quietly(keys)
        if multipart:
            with self._s3.guard(prefix):
                response = await self._s3.client.list_multipart_uploads(Bucket=self._s3.name, Prefix=prefix)
            for item in response.get("Uploads", ()):
                await self._abort_multipart(item["Key"], item["UploadId"])

    async def _delete_quietly(self, keys: list[str]) -> None:
        """Best effort: what stays behind is garbage the next sweep finds, never a visible blob."""
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            try:
                with self._s3.guard("staging objects"):
                    await self._s3.client.delete_objects(
                        Bucket=self._s3.name, Delete={"Objects": batch, "Quiet": True}
                    )
            except (StorageUnavailable, ClientError) as exc:
                log.warning("could not delete %d staging objects: %s", len(batch), exc)

    # --- startup ---------------------------------------------------------------------------

    async def _check_store(self) -> None:
        where = f"bucket {self._s3.name!r}"
        try:
            await self._ensure_bucket()
            await self._probe()
        except NoCredentialsError:
            raise S3StoreError(
                "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or a profile)"
            ) from None
        except StorageUnavailable as exc:
            raise S3StoreError(f"S3 store unreachable ({where}): {exc.__cause__ or exc}") from None
        except (ClientError, BotoCoreError, OSError) as exc:
            raise S3StoreError(f"S3 store check failed ({where}, sse {self._s3.sse.mode}): {exc}") from None

    async def _ensure_bucket(self) -> None:
        try:
            with self._s3.guard(self._s3.name):
                await self._s3.client.head_bucket(Bucket=self._s3.name)
            return
        except FileNotFoundError:
            pass
        try:
            with self._s3.guard(self._s3.name):
                await self._s3.client.create_bucket(Bucket=self._s3.name, **self._location_constraint())
        except ClientError as exc:
            if error_code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
            with self._s3.guard(self._s3.name):  # someone else's bucket answers 403 here
                await self._s3.client.head_bucket(Bucket=self._s3.name)

    def _location_constraint(self) -> dict[str, Any]:
        region = self._s3.client.meta.region_name
        if not region or region == "us-east-1":
            return {}
        return {"CreateBucketConfiguration": {"LocationConstraint": region}}

    async def _probe(self) -> None:
        """Write, read back and delete one object with the SSE settings every blob will use."""
        key = f"_probe/{uuid.uuid4().hex}"
        payload = b"ocigate probe " + secrets.token_bytes(16)
        with self._s3.guard(key):
            response = await self._s3.client.put_object(
                Bucket=self._s3.name,
                Key=key,
                Body=payload,
                ContentMD5=md5_base64(payload),
                **self._s3.sse.write,
            )
        try:
            if not self._s3.sse.honoured(response):
                raise S3StoreError(
                    f"the S3 store ignored server-side encryption {self._s3.sse.mode!r}: "
                    "blobs would be stored unencrypted"
                )
            returned = bytearray()
            async for chunk in self.read(key, 0, len(payload)):
                assert not isinstance(chunk, SocketStretch)  # the probe is far below TAKE_OVER_MIN
                returned += chunk
            if returned != payload:
                raise S3StoreError("the S3 store returned other bytes than it was given")
            if self._s3.sse.mode == "sse-c" and await self._readable_without_key(key):
                raise S3StoreError("the S3 store serves SSE-C objects without their key")
        finally:
            await self.delete(key)

    async def _readable_without_key(self, key: str) -> bool:
        try:
            with self._s3.guard(key):
                response = await self._s3.client.get_object(Bucket=self._s3.name, Key=key)
        except ClientError:
            return False
        response["Body"].close()
        return True


@dataclass(frozen=True)
class _Upload:
    """The driver state of one upload (see the module docstring)."""

    mpu: str | None = None
    parts: tuple[tuple[int, str, int], ...] = ()  # (number, ETag, size)
    tail: str | None = None
    tail_size: int = 0
    stale: str | None = None  # the previous tail: nothing refers to it once this state is stored

    @property
    def size(self) -> int:
        return sum(part[2] for part in self.parts) + self.tail_size

    @classmethod
    def load(cls, state: DriverState) -> _Upload:
        return cls(
            state.get("mpu"),
            tuple((int(n), str(etag), int(size)) for n, etag, size in state.get("parts", ())),
            state.get("tail"),
            int(state.get("tail_size", 0)),
            state.get("stale"),
        )

    def dump(self) -> DriverState:
        return {
            "mpu": self.mpu,
            "parts": [list(part) for part in self.parts],
            "tail": self.tail,
            "tail_size": self.tail_size,
            "stale": self.stale,
        }


async def _chunks(stream: aiohttp.StreamReader) -> AsyncGenerator[bytes, None]:
    """A body's pieces as the socket gave them (no joins), b"" at its end."""
    stream.set_read_chunk_size(READ_BUFFER)
    while True:
        piece, _ = await stream.readchunk()
        yield piece
        if not piece:
            return


def _blob_key(upload_id: str) -> str:
    return f"blobs/{upload_id}"
