"""The spool of a flight: where every byte of one read of the store also goes, from its first
byte on (the edge cache's fill, edge_cache.CacheFill), or from the first byte still in memory
when the flight would leave readers behind (a spill file, spill.py). Readers the flight's window
left behind read it back; a complete cache fill is what later reads are served from."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

from .base import Piece

log = logging.getLogger(__name__)

FILL_STALL = 10.0  # seconds a cache fill may hold back waiting readers without moving


class Spool(Protocol):
    granule: int  # `append` takes multiples of this, but for the last bytes
    start: int  # the blob's first byte it holds
    written: int  # bytes [start, written) of the blob can be read back

    async def append(self, data: bytearray) -> None:
        """Add `data` (handed over: the caller no longer touches it) at `written`."""

    async def read(self, start: int, end: int) -> Piece:
        """Bytes [start, end) of what was written (end <= written)."""

    async def finish(self, complete: bool) -> None:
        """All bytes are in (`complete`): keep them; otherwise discard them."""

    def close(self) -> None:
        """No read follows any more: let go of the file."""


OpenSpool = Callable[[], Awaitable[Spool | None]]  # None: this flight fills no spool after all


async def opened(open_spool: OpenSpool, location: str) -> Spool | None:
    """The spool `open_spool` opens for a flight of `location`, or None: it failed (logged), or
    the flight ended meanwhile (then what it opens later is discarded)."""
    opening = asyncio.ensure_future(open_spool())
    try:
        return await asyncio.shield(opening)
    except asyncio.CancelledError:  # nobody reads any more
        opening.add_done_callback(_discard_when_opened)
    except Exception as exc:
        log.debug("edge cache fill of %s not started: %r", location, exc)
    return None


async def write_batched(spool: Spool, pieces: AsyncIterator[Piece], appended: Callable[[], None]) -> None:
    """Append `pieces` to `spool` in multiples of its granule (but the last bytes), calling
    `appended` after each append."""
    batch = bytearray()
    async for piece in pieces:
        batch += piece
        if len(batch) >= spool.granule:
            whole = len(batch) - len(batch) % spool.granule
            full, batch = batch, batch[whole:]
            del full[whole:]
            await spool.append(full)  # handed over
            appended()
    if batch:
        await spool.append(batch)


def _discard_when_opened(opening: asyncio.Future[Spool | None]) -> None:
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
