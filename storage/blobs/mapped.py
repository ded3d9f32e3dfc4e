"""Blob files kept mapped between reads.

A hot layer (a rollout pulling one image onto many nodes) is read by many requests in a row.
Mapping the file per request cost each request its header check, a page fault per 64 KiB to
build the page tables again, and the unmapping: ~10% of the CPU of a large GET. Kept mapped, a
blob is opened, checked, and entered into the page tables once while it stays in use.

A mapping is closed when no read has used it for `idle` to 2 x `idle` seconds, or sooner,
least recently used first, while more than `most` files or `limit` bytes are mapped. Its pages
are the page cache's: a mapping kept costs a file descriptor, address space and page tables
(2 MiB per GiB mapped), not memory.
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
        self,
        open_blob: Callable[[str], MappedBlob],
        idle: float = 10.0,
        limit: int = 8 << 30,
        most: int = 64,
    ) -> None:
        self._open_blob = open_blob  # blocking: run in a thread
        self._idle = idle
        self._limit = limit
        self._most = most  # a mapping holds a file descriptor (Python's mmap keeps a dup)
        self._blobs: dict[str, MappedBlob] = {}  # by location, least recently used first
        self._timer: asyncio.TimerHandle | None = None

    async def acquire(self, location: str) -> MappedBlob:
        """The blob at `location`, mapped, until `release`; raises as `open_blob` does."""
        blob = self._blobs.pop(location, None)
        if blob is not None and blob.mapping.size() != len(blob.mapping):
            # the file changed length since it was checked (only tampering does that): reading
            # past its new end through the mapping would kill the process (SIGBUS), so it is
            # opened and checked again, and fails there
            self._let_go(blob)
            blob = None
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

    def forget(self, location: str) -> None:
        """Stop serving `location` from its mapping (its file is being deleted)."""
        blob = self._blobs.pop(location, None)
        if blob is not None:
            self._let_go(blob)

    def close(self) -> None:
        for location in list(self._blobs):
            self.forget(location)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    @staticmethod
    def _let_go(blob: MappedBlob) -> None:
        """Close a mapping no longer kept, or have its last read close it (`release`)."""
        if not blob.users:
            blob.close()

    def _sweep(self) -> None:
        """Close what has been idle too long, and the least recently used idle mappings while
        over the limits; then come back when the next may have been idle too long."""
        now = time.monotonic()
        count, mapped = len(self._blobs), sum(len(blob.mapping) for blob in self._blobs.values())
        for location, blob in list(self._blobs.items()):  # least recently used first
            over = count > self._most or mapped > self._limit
            if not blob.users and (over or now - blob.idle_since >= self._idle):
                del self._blobs[location]
                count, mapped = count - 1, mapped - len(blob.mapping)
                blob.close()
        if self._timer is None and self._blobs:
            with contextlib.suppress(RuntimeError):  # no running loop: the next release sweeps
                self._timer = asyncio.get_running_loop().call_later(self._idle, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._sweep()
