"""Uploads to the S3 store: staging an upload's bytes as parts and tails, committing, aborting.

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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from botocore.exceptions import ClientError

from ..config import MIB, MIN_PART
from ..errors import BlobUploadInvalid, StorageUnavailable
from .base import ByteChunks, DriverState
from .s3_parts import PartBody, PartBuffer, md5
from .s3_requests import S3Bucket

__all__ = ["MAX_PARTS", "S3Uploads"]

MAX_PARTS = 10_000
READ_CHUNK = MIB

log = logging.getLogger(__name__)

Part = tuple[int, str, int]  # (number, ETag, size)


class S3Uploads:
    """The upload half of the S3 driver (S3BlobDriver's start/write/commit/abort_upload and
    reap_orphans), in `s3`'s bucket, with parts of `part_size` bytes."""

    def __init__(self, s3: S3Bucket, part_size: int) -> None:
        self._s3 = s3
        self._part_size = part_size

    def start(self, upload_id: str) -> DriverState:
        return _Upload().dump()  # nothing to create until bytes arrive

    async def write(self, upload_id: str, state: DriverState, offset: int, chunks: ByteChunks) -> DriverState:
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

    async def commit(self, upload_id: str, state: DriverState, size: int) -> str:
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

    async def abort(self, upload_id: str, state: DriverState) -> None:
        upload = _Upload.load(state)
        if upload.mpu is not None:
            await self._abort_multipart(_blob_key(upload_id), upload.mpu)
        await self._sweep(upload_id, keep=None, multipart=True)

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

    def _rewind(self, upload_id: str, upload: _Upload, offset: int) -> tuple[list[Part], int]:
        """The parts kept when writing at `offset`, and how many tail bytes to keep."""
        if offset > upload.size:
            raise OSError(f"upload {upload_id}: offset {offset} is past the {upload.size} staged bytes")
        parts: list[Part] = []
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

    async def _upload_part(self, upload_id: str, mpu: str, number: int, buffer: PartBuffer) -> Part:
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

    async def _copy_part(self, upload_id: str, mpu: str, number: int, source: str) -> Part:
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

    async def _complete(self, upload_id: str, mpu: str, parts: list[Part]) -> None:
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


@dataclass(frozen=True)
class _Upload:
    """The driver state of one upload (see the module docstring)."""

    mpu: str | None = None
    parts: tuple[Part, ...] = ()
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


def _blob_key(upload_id: str) -> str:
    return f"blobs/{upload_id}"
