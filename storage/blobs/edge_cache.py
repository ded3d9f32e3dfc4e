"""The edge cache: blobs read from a remote store, kept on the replica's own disk.

The second storm of a rollout (and every later pull of a hot layer) is served from local disk
instead of S3. The cache is a `FilesystemBlobDriver` rooted at the cache directory, so entries
are the filesystem store's files: AES-256-GCM chunks under a key derived from the blob key
(HKDF, its own label), each file sealed to its name and length, read through kept mappings.

    blobs/<2 hex>/<name>    complete, verified entries (the only files ever served)
    uploads/<name>          fills in progress (a fill is an upload of the filesystem store)
    locks/<name>            held (flock) by the process filling <name>

- **Names.** `<name>` is xxh3-128 of the blob's location and digest. A location changes when a
  digest is uploaded again after its deletion (S3: `blobs/<upload id>`), so an entry of a
  deleted blob is never found by its successor; and the gateway checks the metadata row before
  every read (stat_blob), so a blob deleted anywhere is unreachable at once on every replica,
  cached or not. `discard` frees the disk at once (for garbage collection).
- **Fills.** A read of a whole blob that misses fills the cache as it streams (fanout.py): each
  2 MiB batch is hashed and encrypted in a thread; the digest is checked once the last byte is
  in, and only then is the file sealed, synced and renamed into `blobs/`. A crash mid-fill
  leaves a file in `uploads/` that no read ever opens, deleted at the next start. One process
  of a replica fills a given blob at a time (the flock); the others read the store meanwhile.
- **Bounded, least recently used first.** After every fill the directory is scanned (it is the
  index, shared by the workers and kept across restarts) and the entries read least recently
  (mtime, touched at most once a minute per worker on a hit) go until the total is under 90%
  of `max_bytes`. A blob larger than the bound is not cached.
- **Never fails a read.** A full or failing disk, a file that fails its checks: the read goes
  to the store instead (logged once per outage; the file is discarded when it is corrupt).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import xxhash
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..crypto import CHUNK_SIZE, HEADER_SIZE, BlobCipher, record_offset, records_size
from ..health import StoreHealth
from ..private import private_dir
from .base import ReadChunks
from .filesystem import BATCH_CHUNKS, FilesystemBlobDriver

log = logging.getLogger(__name__)

FILL_BATCH = BATCH_CHUNKS * CHUNK_SIZE  # bytes hashed and encrypted per thread-pool trip
TOUCH_EVERY = 60.0  # seconds between two mtime updates of an entry by one process
LOW_WATER = 0.9  # eviction goes down to this fraction of the bound
_KEY_LABEL = b"ocigate edge cache key v1\0"


@dataclass
class CacheCounters:
    hits: int = 0  # reads served from the cache
    misses: int = 0
    served_bytes: int = 0
    fills: int = 0  # entries added
    rejected: int = 0  # fills whose bytes did not match the digest
    failed: int = 0  # fills the disk failed (full, I/O error)
    evicted: int = 0
    discarded: int = 0  # entries removed by `discard` or because they failed their checks
    bytes: int = 0  # what the entries held at the last scan (all processes' entries)
    entries: int = 0


def cache_key(blob_key: bytes) -> bytes:
    """The cache's own key, derived from the blob key: a cache file can never pose as a blob."""
    return HKDF(hashes.SHA256(), 32, None, _KEY_LABEL).derive(blob_key)


class EdgeCache:
    def __init__(self, directory: Path, max_bytes: int, blob_key: bytes) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._key = cache_key(blob_key)
        self._files = FilesystemBlobDriver(directory, self._key)
        self.health = StoreHealth("edge_cache", "blobs are read from the store and not cached")
        self._files.health = self.health  # its disk errors are the cache's
        self._locks = private_dir(directory / "locks")
        self._touched: dict[str, float] = {}
        self.counters = CacheCounters()

    @staticmethod
    def name(location: str, digest: str) -> str:
        return xxhash.xxh3_128_hexdigest(f"{location}\0{digest}".encode())

    def read(self, name: str, start: int, end: int) -> ReadChunks:
        """Bytes [start, end) of an entry; FileNotFoundError when it is not cached,
        BlobIntegrityError when its file fails its checks."""
        return self._files.read(_entry(name), start, end)

    def holds(self, name: str) -> bool:
        """Whether entry `name` is there now (a read of it may still find it gone)."""
        return self._path(name).exists()

    def touch(self, name: str) -> None:
        """A hit: the entry is recently used (for the eviction order)."""
        now = time.monotonic()
        if now - self._touched.get(name, 0.0) < TOUCH_EVERY:
            return
        self._touched[name] = now
        with contextlib.suppress(OSError):
            os.utime(self._path(name))

    async def fill(self, name: str, digest: str, size: int) -> CacheFill | None:
        """A fill of entry `name`, or None when this process should not fill it (too large, the
        disk failing, another process filling it, or already there)."""
        if size > self.max_bytes or not self.health.up:
            return None
        try:
            lock = await asyncio.to_thread(self._lock, name)
            if lock is None:
                return None
            try:
                await self._files.start_upload(name)
                reader, cipher = await asyncio.to_thread(self._open_staged, name)
            except BaseException:
                _unlock(lock, self._locks / name)
                raise
        except Exception as exc:  # the cache never fails a read
            log.debug("edge cache: no fill of %s: %r", name, exc)
            return None
        return CacheFill(self, name, digest, size, lock, reader, cipher)

    def _lock(self, name: str) -> int | None:
        if self._path(name).exists():
            return None
        fd = os.open(self._locks / name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        if self._path(name).exists():  # committed by another process just before the lock
            _unlock(fd, self._locks / name)
            return None
        return fd

    def _open_staged(self, name: str) -> tuple[int, BlobCipher]:
        fd = os.open(self.directory / "uploads" / name, os.O_RDONLY | os.O_CLOEXEC)
        try:
            return fd, BlobCipher.from_header(self._key, os.pread(fd, HEADER_SIZE, 0))
        except BaseException:
            os.close(fd)
            raise

    async def discard(self, name: str) -> None:
        """Remove an entry now (idempotent): for garbage collection, and for files that fail."""
        self._touched.pop(name, None)
        await self._files.delete(_entry(name))
        self.counters.discarded += 1

    async def evict(self) -> int:
        """Remove the least recently used entries while over the bound; returns how many."""
        victims = await asyncio.to_thread(self._victims)
        for entry in victims:
            self._touched.pop(entry.rpartition("/")[2], None)
            with contextlib.suppress(OSError):
                await self._files.delete(entry)
        self.counters.evicted += len(victims)
        return len(victims)

    def _victims(self) -> list[str]:
        """Entries to remove, least recently used first (one process at a time decides)."""
        fd = os.open(self.directory / "evict.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return []  # another process is at it
            entries: list[tuple[float, int, str]] = []
            with os.scandir(self.directory / "blobs") as shards:
                for shard in shards:
                    with contextlib.suppress(FileNotFoundError), os.scandir(shard.path) as files:
                        for entry in files:
                            with contextlib.suppress(FileNotFoundError):
                                stat = entry.stat()
                                entries.append((stat.st_mtime, stat.st_size, f"{shard.name}/{entry.name}"))
            total = sum(size for _, size, _ in entries)
            self.counters.bytes, self.counters.entries = total, len(entries)
            victims: list[str] = []
            if total > self.max_bytes:
                for _, size, victim in sorted(entries):
                    if total <= self.max_bytes * LOW_WATER:
                        break
                    # unlinked here, with the lock held: the mapping, if any, goes in `evict`
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self.directory / "blobs" / victim)
                    victims.append(victim)
                    total -= size
            self.counters.bytes, self.counters.entries = total, len(entries) - len(victims)
            return victims
        finally:
            os.close(fd)

    async def sweep(self) -> int:
        """Delete fills that no process is writing (left by a crash); returns how many."""
        return await self._files.reap_orphans(self._orphaned, time.time())

    async def _orphaned(self, name: str) -> bool:
        def unlocked() -> bool:
            fd = os.open(self._locks / name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            finally:
                os.close(fd)  # releases the lock, if taken
            return True

        return await asyncio.to_thread(unlocked)

    async def close(self) -> None:
        await self._files.close()

    def _path(self, name: str) -> Path:
        return self.directory / "blobs" / _entry(name)


class CacheFill:
    """One entry being filled: the `Spool` of a flight (fanout.py). Bytes come in order; what
    was written can be read back (by readers the window left behind) before it is complete."""

    granule = FILL_BATCH
    start = 0

    def __init__(
        self, cache: EdgeCache, name: str, digest: str, size: int, lock: int, reader: int, cipher: BlobCipher
    ) -> None:
        self._cache = cache
        self._name = name
        self._digest = digest
        self._size = size
        self._lock = lock
        self._reader = reader  # a descriptor of the staged file: stays valid after a rename or unlink
        self._cipher = cipher
        self._hash = hashlib.new(digest.partition(":")[0])
        self.written = 0

    async def append(self, data: bytearray) -> None:
        files = self._cache._files
        # hashed and encrypted at once, in two threads (both let go of the GIL)
        await asyncio.gather(
            asyncio.to_thread(self._hash.update, data),
            files.write_upload(self._name, {}, self.written, _once(data)),
        )
        self.written += len(data)

    async def read(self, start: int, end: int) -> bytearray:
        return await asyncio.to_thread(self._read, start, end)

    def _read(self, start: int, end: int) -> bytearray:
        first = start // CHUNK_SIZE
        plaintext = min(-(-end // CHUNK_SIZE) * CHUNK_SIZE, self.written) - first * CHUNK_SIZE
        length = records_size(plaintext)
        records = os.pread(self._reader, length, record_offset(first))
        if len(records) != length:
            raise OSError(f"edge cache fill {self._name}: {len(records)} of {length} bytes readable")
        data = self._cipher.decrypt(first, records)
        skip = start - first * CHUNK_SIZE
        del data[:skip]
        del data[end - start :]
        return data

    async def finish(self, complete: bool) -> None:
        cache, files, counters = self._cache, self._cache._files, self._cache.counters
        try:
            if complete and f"{self._digest.partition(':')[0]}:{self._hash.hexdigest()}" != self._digest:
                # SECURITY: bytes that are not the blob are never served from the cache
                counters.rejected += 1
                log.warning(
                    "edge cache: the store's bytes of %s do not match its digest: not cached", self._digest
                )
                complete = False
            if complete:
                await asyncio.to_thread(_sync, cache.directory / "uploads" / self._name)
                await files.commit_upload(self._name, {}, self._size, _entry(self._name))
                counters.fills += 1
            else:
                await files.abort_upload(self._name, {})
        except Exception as exc:  # a full or failing disk: the read it served went fine
            counters.failed += 1
            log.debug("edge cache: fill of %s failed: %r", self._name, exc)
            with contextlib.suppress(Exception):
                await files.abort_upload(self._name, {})
            complete = False
        finally:
            _unlock(self._lock, cache._locks / self._name)
        if complete:
            with contextlib.suppress(Exception):
                await cache.evict()

    def close(self) -> None:
        os.close(self._reader)


def _entry(name: str) -> str:
    return f"{name[:2]}/{name}"


async def _once(data: bytearray) -> AsyncIterator[bytes]:
    yield data  # type: ignore[misc]  # write_upload reads any bytes-like chunk


def _sync(path: Path) -> None:
    """To the disk before the rename: after a power loss an entry is whole or absent."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlock(fd: int, path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()  # before the unlock: a process waiting for it opens a new file anyway
    os.close(fd)
