"""The spool of a flight: where every byte of one read of the store also goes, from its first
byte on (the edge cache's fill, edge_cache.CacheFill). Readers the flight's window left behind
read it back; once complete it is what later reads are served from."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

from .base import Piece

FILL_STALL = 10.0  # seconds a cache fill may hold back waiting readers without moving


class Spool(Protocol):
    granule: int  # `append` takes multiples of this, but for the last bytes
    written: int  # bytes [0, written) can be read back

    async def append(self, data: bytearray) -> None:
        """Add `data` (handed over: the caller no longer touches it) at `written`."""

    async def read(self, start: int, end: int) -> Piece:
        """Bytes [start, end) of what was written (end <= written)."""

    async def finish(self, complete: bool) -> None:
        """All bytes are in (`complete`): keep them; otherwise discard them."""

    def close(self) -> None:
        """No read follows any more: let go of the file."""


OpenSpool = Callable[[], Awaitable[Spool | None]]  # None: this flight fills no spool after all


def discard_when_opened(opening: asyncio.Future[Spool | None]) -> None:
    """A done-callback for a spool being opened for a flight that ended meanwhile: discard it."""
    if opening.cancelled() or opening.exception() is not None:
        return
    spool = opening.result()
    if spool is not None:

        async def discard() -> None:
            try:
                await spool.finish(False)
            finally:
                spool.close()

        _background.add(task := asyncio.get_running_loop().create_task(discard()))
        task.add_done_callback(_background.discard)


_background: set[asyncio.Task[None]] = set()
