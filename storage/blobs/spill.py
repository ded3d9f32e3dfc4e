"""A flight's private spool: a spill file for the readers its window leaves behind.

Without a spool of its own (no edge cache, or another worker of the replica holds the blob's
fill), a flight used to detach its slow readers, and each then read the store on its own from
where it stood, with a window of its own: in a storm of hundreds of nodes, the blob was read
from S3 dozens of times over and every such read held memory. Instead, the first time a flight
would leave readers behind, it starts a spill: every byte from the first one still in memory on
goes to a temporary file too, and the laggards read it back there, at their own pace, as it
grows (the same rules as the cache's spool: spool.py, fanout.py).

The file is anonymous (unlinked at once: nothing is left behind by a crash), encrypted with a
key of its own that never leaves the process (AES-256-GCM chunks as the blob files are), and
closed, its disk space freed, when the flight's last reader leaves. It holds at most the blob's
bytes past that first one: a temporary directory on disk (not tmpfs) is assumed; see the README.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..crypto import CHUNK_SIZE, KEY_SIZE, RECORD_SIZE, BlobCipher, records_size
from .base import Piece

SPILL_GRANULE = 4 * CHUNK_SIZE  # bytes encrypted per thread-pool trip


class Spill:
    """A `Spool` (spool.py) of bytes [start, …) of one blob, in an anonymous encrypted file."""

    granule = SPILL_GRANULE

    def __init__(self, fd: int, start: int, on_close: Callable[[], None] = lambda: None) -> None:
        self._fd = fd
        self._on_close = on_close  # the space it reserved is free again
        self._cipher = BlobCipher.create(os.urandom(KEY_SIZE))  # this file's key: only in memory
        self.start = self.written = start

    @classmethod
    async def open(
        cls, directory: Path | None, start: int, on_close: Callable[[], None] = lambda: None
    ) -> Spill:
        def create() -> int:
            with tempfile.TemporaryFile(dir=directory, prefix="ocigate-spill-") as file:
                return os.dup(file.fileno())  # already unlinked

        return cls(await asyncio.to_thread(create), start, on_close)

    async def append(self, data: bytearray) -> None:
        await asyncio.to_thread(self._append, data)
        self.written += len(data)

    def _append(self, data: bytearray) -> None:
        first = (self.written - self.start) // CHUNK_SIZE  # appends are whole chunks but the last
        records = bytearray(records_size(len(data)))
        length = self._cipher.encrypt_into(first, data, records)
        os.pwrite(self._fd, memoryview(records)[:length], first * RECORD_SIZE)

    async def read(self, start: int, end: int) -> Piece:
        return await asyncio.to_thread(self._read, start, end)

    def _read(self, start: int, end: int) -> bytearray:
        first = (start - self.start) // CHUNK_SIZE
        last = min(-(-(end - self.start) // CHUNK_SIZE) * CHUNK_SIZE, self.written - self.start)
        length = records_size(last - first * CHUNK_SIZE)
        records = os.pread(self._fd, length, first * RECORD_SIZE)
        if len(records) != length:
            raise OSError(f"spill file: {len(records)} of {length} bytes readable")
        data = self._cipher.decrypt(first, records)
        del data[: start - self.start - first * CHUNK_SIZE]
        del data[end - start :]
        return data

    async def finish(self, complete: bool) -> None:
        """Nothing to keep: the file goes when it is closed."""

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            self._on_close()
