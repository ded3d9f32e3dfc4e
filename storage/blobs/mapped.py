"""Blob files kept mapped between reads.

A hot layer (a rollout pulling one image onto many nodes) is read by many requests in a row.
Mapping the file per request cost each request its header check, a page fault per 64 KiB to
build the page tables again, and the unmapping: ~10% of the CPU of a large GET. Kept mapped, a
blob is opened, checked, and entered into the page tables once while it stays in use.

A mapping is closed once no read has used it for `idle` seconds, or sooner, least recently
used first, while more than `limit` bytes are mapped. Its pages are the page cache's: keeping a
mapping costs address space and page tables (2 MiB per GiB), not memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import mmap
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..crypto import BlobCipher

__all__ = ["MappedBlob", "MappedBlobs"]


@dataclass(eq=False)
class MappedBlob:
    """One blob file, checked and mapped read-only: `address` is where the mapping starts."""

    location: str
    mapping: mmap.mmap
    address: int
    cipher: BlobCipher
    size: int
    users: int = 0
    idle_since: float = field(default_factory=time.monotonic)

    def close(self) -> None:
        with contextlib.suppress(BufferError):  # a batch still in flight: unmapped when it ends
            self.mapping.close()


class MappedBlobs:
    def __init__(
        self, open_blob: Callable[[str], MappedBlob], idle: float = 10.0, limit: int = 8 << 30
    ) -> None:
        self._open_blob = open_blob  # blocking: run in a thread
        self._idle = idle
        self._limit = limit
        self._blobs: dict[str, MappedBlob] = {}  # by location, least recently used first

    async def acquire(self, location: str) -> MappedBlob:
        """The blob at `location`, mapped, until `release`; raises as `open_blob` does."""
        blob = self._blobs.pop(location, None)
        if blob is None:
            opened = await asyncio.to_thread(self._open_blob, location)
            blob = self._blobs.pop(location, None)  # another read mapped it meanwhile: use that
            if blob is None:
                blob = opened
            else:
                opened.close()
        self._blobs[location] = blob  # now the most recently used
        blob.users += 1
        return blob

    def release(self, blob: MappedBlob) -> None:
        blob.users -= 1
        blob.idle_since = time.monotonic()
        if not blob.users and self._blobs.get(blob.location) is not blob:  # forgotten while in use
            blob.close()
        self._sweep()
        with contextlib.suppress(RuntimeError):  # no running loop: the next read sweeps
            asyncio.get_running_loop().call_later(self._idle, self._sweep)

    def forget(self, location: str) -> None:
        """Stop serving `location` from its mapping (its file is being deleted)."""
        blob = self._blobs.pop(location, None)
        if blob is not None and not blob.users:
            blob.close()

    def close(self) -> None:
        for location in list(self._blobs):
            self.forget(location)

    def _sweep(self) -> None:
        now = time.monotonic()
        mapped = sum(len(blob.mapping) for blob in self._blobs.values())
        for location, blob in list(self._blobs.items()):  # least recently used first
            if not blob.users and (mapped > self._limit or now - blob.idle_since >= self._idle):
                del self._blobs[location]
                mapped -= len(blob.mapping)
                blob.close()
