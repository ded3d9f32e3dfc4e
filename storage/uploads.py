"""Upload sessions: POST, PATCH…, PUT ?digest= (OCI distribution-spec, "Pushing blobs").

A session lives in the metadata store (offset, resumable hash state, driver state), so any
process sharing the stores can take the next request of an upload another one started, and a
crash loses at most the request in flight. A request is all-or-nothing: the session moves
forward (compare-and-set on the offset) only after every byte of it reached the driver.
A digest mismatch discards the staged bytes: nothing unverified ever becomes a blob.
A session idle for longer than its time to live is gone for clients at once, and `expire`
(run periodically by every gateway) deletes what it staged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from weakref import WeakValueDictionary

import orjson

from .blobs import BlobDriver, ByteChunks
from .digest import Digest
from .errors import (
    BlobTooLarge,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    RangeInvalid,
    SizeInvalid,
    StorageFull,
)
from .hashing import ResumableSha256
from .metadata import BlobRecord, UploadRecord
from .metadata.contracts import BlobIngester, UploadSessions

_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
HASH_BATCH = 256 * 1024  # bytes hashed per trip to a thread, and held meanwhile
EXPIRE_BATCH = 100
ORPHAN_GRACE = 3600.0  # seconds staging without a session must sit untouched before it is deleted

log = logging.getLogger(__name__)
Admit = Callable[[int, str], Awaitable[None]]  # (size, digest): raises to refuse a blob


class Uploads:
    def __init__(
        self,
        sessions: UploadSessions,
        ingester: BlobIngester,
        blobs: BlobDriver,
        ttl_seconds: int,
        max_blob_size: int,
    ) -> None:
        self._sessions = sessions
        self._ingester = ingester
        self._blobs = blobs
        self._ttl_ms = ttl_seconds * 1000
        store_limit = blobs.max_blob_size
        self.max_blob_size = max_blob_size if store_limit is None else min(max_blob_size, store_limit)
        # one request at a time per session in this process; other processes are held off by
        # the compare-and-set in `advance_upload`
        self._locks: WeakValueDictionary[str, asyncio.Lock] = WeakValueDictionary()

    async def start(self, registry_id: str, repository: str) -> UploadRecord:
        upload_id = uuid.uuid4().hex
        try:
            driver_state = await self._blobs.start_upload(upload_id)
        except StorageFull:
            await self._blobs.abort_upload(upload_id, {})  # what little it wrote
            raise
        now = _now()
        record = UploadRecord(
            id=upload_id,
            registry_id=registry_id,
            repository=repository,
            offset=0,
            hash_state=ResumableSha256().state(),
            driver_state=orjson.dumps(driver_state),
            created_at=now,
            updated_at=now,
        )
        await self._sessions.create_upload(record)
        return record

    async def get(self, registry_id: str, repository: str, upload_id: str) -> UploadRecord:
        # SECURITY: a session is found only through the registry and repository that made it
        if _UPLOAD_ID.fullmatch(upload_id) is None:
            raise BlobUploadUnknown(upload_id)
        record = await self._sessions.get_upload(upload_id)
        if record is None or record.registry_id != registry_id or record.repository != repository:
            raise BlobUploadUnknown(upload_id)
        if self._expired(record, _now()):
            raise BlobUploadUnknown(upload_id)
        return record

    async def append(
        self,
        registry_id: str,
        repository: str,
        upload_id: str,
        chunks: ByteChunks,
        *,
        start: int | None = None,
        end: int | None = None,
        length: int | None = None,
    ) -> UploadRecord:
        """Store a chunk; `start`/`end` come from Content-Range (inclusive), if the client sent it."""
        async with self._lock(upload_id):
            record = await self.get(registry_id, repository, upload_id)
            async with self._released_when_full(record):
                return await self._append(record, chunks, start=start, end=end, length=length)

    async def finish(
        self,
        registry_id: str,
        repository: str,
        upload_id: str,
        digest: Digest,
        chunks: ByteChunks | None,
        *,
        length: int | None = None,
        admit: Admit | None = None,
    ) -> BlobRecord:
        """Store the last chunk and commit; `admit(size, digest)` may refuse the blob (a quota)
        before it is committed: then what was staged is discarded."""
        async with self._lock(upload_id):
            record = await self.get(registry_id, repository, upload_id)
            async with self._released_when_full(record):
                if chunks is not None:
                    record = await self._append(record, chunks, length=length)
                await self._admitted(record, digest, admit)
                return await self._commit(record, digest)

    async def upload_monolithic(
        self,
        registry_id: str,
        repository: str,
        digest: Digest,
        chunks: ByteChunks,
        *,
        length: int | None = None,
        admit: Admit | None = None,
    ) -> BlobRecord:
        self._check_size(0, length)  # before anything is staged
        record = await self.start(registry_id, repository)
        async with self._lock(record.id):
            try:
                record = await self._append(record, chunks, length=length)
            except BaseException:
                await self._discard(record)  # nothing of a broken monolithic upload stays
                raise
            await self._admitted(record, digest, admit)
            return await self._commit(record, digest)

    async def cancel(self, registry_id: str, repository: str, upload_id: str) -> None:
        async with self._lock(upload_id):
            record = await self.get(registry_id, repository, upload_id)
            await self._discard(record)

    async def discard_all(self, registry_id: str) -> None:
        """Best effort, for a registry being deleted: what its unfinished uploads staged (its
        sessions themselves go with its row)."""
        for record in await self._sessions.registry_uploads(registry_id):
            try:
                await self._blobs.abort_upload(record.id, orjson.loads(record.driver_state))
            except Exception as exc:
                log.warning("could not delete what upload %s staged: %s", record.id, exc)

    async def expire(self, idle_seconds: float | None = None) -> int:
        """Delete the sessions idle for `idle_seconds` (their time to live if None) and what they
        staged; returns how many. A session a request of this process is writing to is left
        alone. Replicas may run this at once: aborting is idempotent and only one deletes the
        row. Staging goes first, so a store that is down leaves the session for the next run."""
        idle_ms = self._ttl_ms if idle_seconds is None else int(idle_seconds * 1000)
        expired = 0
        busy: set[str] = set()
        while True:
            found = await self._sessions.idle_uploads(_now() - idle_ms, EXPIRE_BATCH + len(busy))
            batch = [record for record in found if record.id not in busy]
            if not batch:
                return expired
            for idle in batch:
                if self._lock(idle.id).locked():
                    busy.add(idle.id)
                    continue
                async with self._lock(idle.id):
                    record = await self._sessions.get_upload(idle.id)
                    if record is None or record.updated_at >= _now() - idle_ms:
                        continue  # finished, cancelled or moved on meanwhile
                    try:
                        await self._discard(record)
                    except Exception as exc:
                        log.warning("could not expire upload %s: %s", record.id, exc)
                        return expired
                    expired += 1

    async def reap_orphans(self) -> int:
        """Delete what the blob store holds staged for sessions that no longer exist (a process
        that died between staging and recording the session, a discard that failed halfway);
        only staging untouched for ORPHAN_GRACE, so that no session being created is hit."""

        async def orphaned(upload_id: str) -> bool:
            return (
                _UPLOAD_ID.fullmatch(upload_id) is not None
                and await self._sessions.get_upload(upload_id) is None
            )

        return await self._blobs.reap_orphans(orphaned, time.time() - ORPHAN_GRACE)

    # -----------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _released_when_full(self, record: UploadRecord) -> AsyncIterator[None]:
        """On a full disk the session goes at once with what it staged: waiting for its time to
        live would keep the space taken while pushes fail for want of it. The client starts the
        upload again (its next request for it gets 404 BLOB_UPLOAD_UNKNOWN)."""
        try:
            yield
        except StorageFull as exc:
            try:
                await self._discard(record)
            except Exception as failure:  # the periodic expiry sweeps it later
                log.warning("could not release what upload %s staged: %s", record.id, failure)
            raise StorageFull(
                {"upload": record.id},
                message="the registry's storage is full: this upload was discarded; push again later",
            ) from exc

    async def _admitted(self, record: UploadRecord, digest: Digest, admit: Admit | None) -> None:
        if admit is None:
            return
        try:
            await admit(record.offset, str(digest))
        except BaseException:
            await self._discard(record)
            raise

    def _check_size(self, offset: int, length: int | None) -> None:
        if length is not None and offset + length > self.max_blob_size:
            raise BlobTooLarge({"limit": self.max_blob_size, "length": offset + length})

    def _expired(self, record: UploadRecord, now: int) -> bool:
        return record.updated_at < now - self._ttl_ms

    def _lock(self, upload_id: str) -> asyncio.Lock:
        lock = self._locks.get(upload_id)
        if lock is None:
            lock = self._locks[upload_id] = asyncio.Lock()
        return lock

    async def _append(
        self,
        record: UploadRecord,
        chunks: ByteChunks,
        *,
        start: int | None = None,
        end: int | None = None,
        length: int | None = None,
    ) -> UploadRecord:
        if start is not None and start != record.offset:
            # OCI spec: a chunk that does not start where the upload stands is a 416
            raise RangeInvalid(
                {"offset": record.offset},
                message="chunk out of order",
                headers={"Range": f"0-{max(record.offset - 1, 0)}", "Docker-Upload-UUID": record.id},
            )
        if start is not None and end is not None and length is not None and end - start + 1 != length:
            raise SizeInvalid(message="Content-Range does not match Content-Length")
        self._check_size(record.offset, length)  # a declared length: refused before a byte is read
        hasher = ResumableSha256(record.hash_state)
        counted = _Counted(chunks, hasher, self.max_blob_size - record.offset)
        driver_state = await self._blobs.write_upload(
            record.id, orjson.loads(record.driver_state), record.offset, counted
        )
        if length is not None and counted.size != length:
            raise SizeInvalid(message=f"received {counted.size} bytes, Content-Length said {length}")
        if end is not None and start is not None and counted.size != end - start + 1:
            raise SizeInvalid(message="received byte count does not match Content-Range")
        offset = record.offset + counted.size
        state_bytes = orjson.dumps(driver_state)
        now = _now()
        advanced = await self._sessions.advance_upload(
            record.id, record.offset, offset, hasher.state(), state_bytes, now
        )
        if not advanced:
            raise BlobUploadInvalid(message="upload was changed concurrently; check its status and retry")
        return UploadRecord(
            record.id,
            record.registry_id,
            record.repository,
            offset,
            hasher.state(),
            state_bytes,
            record.created_at,
            now,
        )

    async def _commit(self, record: UploadRecord, digest: Digest) -> BlobRecord:
        if digest.algorithm != ResumableSha256.algorithm:
            await self._discard(record)
            raise DigestInvalid(str(digest), message="uploads are verified with sha256 only")
        computed = ResumableSha256(record.hash_state).hexdigest()
        if computed != digest.encoded:
            await self._discard(record)
            raise DigestInvalid({"expected": str(digest), "computed": f"sha256:{computed}"})

        driver_state = orjson.loads(record.driver_state)
        # stored once: link the copy we have and drop this one; but never record a row for a
        # blob found a moment ago, which the collector may be deleting (its bytes would go)
        existing = await self._ingester.link_existing_blob(record.registry_id, record.repository, str(digest))
        if existing is not None:
            await self._blobs.abort_upload(record.id, driver_state)
            blob = existing
        else:
            # unique per commit: the bytes of a collected blob of the same digest may still be
            # queued for deletion under the name an earlier commit used
            key = f"{digest.algorithm}/{digest.encoded[:2]}/{digest.encoded}.{record.id}"
            location = await self._blobs.commit_upload(record.id, driver_state, record.offset, key)
            candidate = BlobRecord(str(digest), record.offset, location)
            blob = await self._ingester.add_blob(record.registry_id, record.repository, candidate)
            if blob.location != location:  # lost a race to an identical upload elsewhere
                await self._blobs.delete(location)
        await self._sessions.delete_upload(record.id)
        return blob

    async def _discard(self, record: UploadRecord) -> None:
        await self._blobs.abort_upload(record.id, orjson.loads(record.driver_state))
        await self._sessions.delete_upload(record.id)


class _Counted:
    """Feeds the request body to the driver as received, hashing it in ~256 KiB groups off the
    loop (libcrypto releases the GIL, so hashing runs on the other core) and counting bytes.
    Chunks are never joined into copies: memory per upload stays near the driver's own buffer."""

    def __init__(self, chunks: ByteChunks, hasher: ResumableSha256, limit: int) -> None:
        self._chunks = chunks
        self._hasher = hasher
        self._limit = limit  # bytes this request may add (a body without Content-Length)
        self.size = 0

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._batches()

    async def _batches(self) -> AsyncIterator[bytes]:
        pending: list[bytes] = []  # the chunks as received: hashed together, never copied
        size = 0
        async for chunk in self._chunks:
            pending.append(chunk)
            size += len(chunk)
            if self.size + size > self._limit:
                raise BlobTooLarge(message="blob exceeds the size limit: upload stopped")
            if size >= HASH_BATCH:
                await self._hash(pending, size)
                for piece in pending:
                    yield piece
                pending, size = [], 0
        if pending:
            await self._hash(pending, size)
            for piece in pending:
                yield piece

    async def _hash(self, pieces: list[bytes], size: int) -> None:
        if size >= 64 * 1024:
            await asyncio.to_thread(self._update, pieces)
        else:
            self._update(pieces)
        self.size += size

    def _update(self, pieces: list[bytes]) -> None:
        for piece in pieces:
            self._hasher.update(piece)


def _now() -> int:
    return int(time.time() * 1000)
