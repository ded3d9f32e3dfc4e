"""The blob driver interface, the one thing a new backend implements.

Bytes reach a driver in two ways: an upload session appends to a staging area named by the
upload id, then `commit_upload` turns the staged bytes into a blob and answers *where* it now
lives (a location string the metadata store keeps). Reads and deletes name that location.
Drivers never see digests of uncommitted data and never decide what is visible: that is the
metadata store's job, so a driver crash can leave garbage but never a half-visible blob.

`write_upload` is all-or-nothing from the domain's point of view: it returns the new driver
state only when every chunk was stored. If it raises, the domain keeps the previous state and
the next write starts again from the previous offset, overwriting whatever was left there.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Any

from ..health import StoreHealth

ByteChunks = AsyncIterable[bytes]
DriverState = dict[str, Any]
# bytes of a blob as a driver holds them: a read yields its buffers as they are, never copied
# into `bytes` (a copy costs a fifth of the CPU of a large GET)
Piece = bytes | bytearray | memoryview


class SocketStretch(ABC):
    """Bytes of a read still on the store's connection, which `read` may yield in place of
    bytes: a consumer that writes to a plain socket of its own can have the kernel move them
    there (`splice_to`); any other consumer iterates them as pieces. Consume it before asking
    `read` for more: the read closes the connection when it goes on."""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    async def splice_to(self, fd: int) -> bool:
        """Move every byte to the connected socket `fd` (non-blocking), or return False at once
        when this stretch cannot (e.g. the store's connection is TLS): then iterate it."""

    @abstractmethod
    def __aiter__(self) -> AsyncIterator[Piece]: ...

    @abstractmethod
    def take(self, length: int) -> SocketStretch:
        """The next `length` bytes as a stretch of their own, which must be consumed before the
        rest (this stretch, shorter by `length`): a read handed on in slices."""


ReadChunks = AsyncGenerator[Piece | SocketStretch, None]  # closed by the consumer (aclosing)


class BlobDriver(ABC):
    """A store that is down raises StorageUnavailable, a full one StorageFull (the domain's 503
    and 507), and says so in `health`."""

    name: str
    health: StoreHealth
    max_blob_size: int | None = None  # the most one blob can hold here, if the store has a limit

    @abstractmethod
    async def check(self) -> None:
        """Raise StorageUnavailable unless the store can serve now (for /readyz)."""

    @abstractmethod
    async def start_upload(self, upload_id: str) -> DriverState:
        """Prepare staging for a new upload; returns the initial JSON-serialisable state."""

    @abstractmethod
    async def write_upload(
        self, upload_id: str, state: DriverState, offset: int, chunks: ByteChunks
    ) -> DriverState:
        """Store `chunks` at `offset` of the staged bytes (anything after is discarded)."""

    @abstractmethod
    async def commit_upload(self, upload_id: str, state: DriverState, size: int, key: str) -> str:
        """Make the staged bytes (exactly `size` of them) a blob; returns its location.

        `key` is a content-derived name (e.g. `sha256/ab/ab12…`) the driver may use.
        """

    @abstractmethod
    async def abort_upload(self, upload_id: str, state: DriverState) -> None:
        """Discard the staged bytes. Idempotent."""

    @abstractmethod
    def read(self, location: str, start: int, end: int) -> ReadChunks:
        """Stream bytes [start, end) of a blob; FileNotFoundError if it is not there.

        Every driver implements it as an async generator (`async def read(…) -> ReadChunks`
        with `yield`), which is a function returning this type: one signature for all."""

    @abstractmethod
    async def delete(self, location: str) -> None:
        """Remove a blob's bytes. Idempotent."""

    async def delete_many(self, locations: list[str]) -> None:
        """Remove the bytes of several blobs (the garbage collector's batches). Idempotent."""
        for location in locations:
            await self.delete(location)

    async def list_blobs(self, after: str, limit: int) -> list[tuple[str, float]]:
        """Up to `limit` (location, last modified as a Unix time) of committed blobs and anything
        else stored where they are, after `after` in location order, for the reconciling scan."""
        return []

    async def redirect_url(self, location: str) -> str | None:
        """A short-lived URL a client may GET the blob's bytes from itself; None: stream them."""
        return None

    async def free_space(self) -> float | None:
        """The fraction of the store's space still free, or None where that has no meaning."""
        return None

    async def reap_orphans(self, orphaned: Callable[[str], Awaitable[bool]], before: float) -> int:
        """Delete staging last changed before `before` (a Unix time) of uploads for which
        `orphaned(upload_id)` says there is no session any more; returns how many. Never
        touches a committed blob."""
        return 0

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and pools."""
