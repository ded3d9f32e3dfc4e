"""Where the bytes of a blob read come from: the one seam between the domain and the drivers'
reads (the domain calls `BlobReads.read`, never `BlobDriver.read`).

A local store (the filesystem driver) is read straight: its files are in the page cache, and
the kernel already shares them between readers. A remote store (S3) is read through the edge
cache when one is configured (edge_cache.py) and through flights (fanout.py) otherwise: one
read of the store per blob per process, however many clients want it, and one per replica
once the cache holds it.

A read goes, for bytes [start, end): to a flight that can take it from `start` (joining costs
nothing); else to the cache (a hit serves the rest); else it starts a flight, which fills the
cache when it reads a whole blob from its first byte. A read that a flight leaves behind (a slow
client, without a spool), or whose flight ends before its own end, goes on the same way from
where it stands.

A flight with one reader and no cache fill hands the store's body to it still on the store's
socket (flight_splice.py), so that a lone pull is spliced socket to socket as without flights;
once a second read follows (or for the fill), the store's bytes enter the process: a copy per
byte received (recv_into) and one per byte sent. Measured in the README.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING

from ..config import LINGER_BYTES, SPILL_BYTES
from ..crypto import BlobIntegrityError
from .base import BlobDriver, ReadChunks, SocketStretch
from .edge_cache import EdgeCache
from .fanout import WINDOW, Flight, Piece, ReadFanout

if TYPE_CHECKING:
    from ..config import StorageConfig

log = logging.getLogger(__name__)


class BlobReads:
    def __init__(
        self,
        driver: BlobDriver,
        cache: EdgeCache | None = None,
        window: int = WINDOW,
        spill_bytes: int = SPILL_BYTES,
        linger_bytes: int = LINGER_BYTES,
    ) -> None:
        self._driver = driver
        self.cache = cache
        self.fanout: ReadFanout | None = None
        if driver.name != "filesystem":
            self.fanout = ReadFanout(driver.read, window, spill_bytes=spill_bytes, linger_bytes=linger_bytes)
        if self.fanout is not None and cache is not None:
            self.fanout.spill_dir = cache.directory  # the disk the operator gave the gateway

    @classmethod
    async def open(cls, driver: BlobDriver, config: StorageConfig) -> BlobReads:
        """Reads of `driver`, with the edge cache `config` asks for (remote stores only)."""
        cache = None
        wanted = config.cache
        if wanted.dir is not None and driver.name != "filesystem":
            from . import blob_key

            cache = EdgeCache(wanted.dir, wanted.bytes, await blob_key(config))
            swept = await cache.sweep()
            await cache.evict()
            log.info(
                "edge cache in %s: %d MB of %d MB used%s",
                wanted.dir,
                cache.counters.bytes // 10**6,
                wanted.bytes // 10**6,
                f", {swept} unfinished fills deleted" if swept else "",
            )
        elif wanted.dir is not None:
            log.warning(
                "no edge cache: the filesystem store is local already (the cache directory is ignored)"
            )
        return cls(driver, cache, spill_bytes=wanted.spill_bytes, linger_bytes=wanted.linger_bytes)

    def read(self, location: str, digest: str, size: int, start: int, end: int) -> ReadChunks:
        """Bytes [start, end) of the blob at `location` (of `digest`, `size` bytes)."""
        if self.fanout is None:
            return self._driver.read(location, start, end)
        return self._shared(location, digest, size, start, end)

    async def _shared(
        self, location: str, digest: str, size: int, start: int, end: int, catching_up: bool = False
    ) -> AsyncGenerator[Piece | SocketStretch, None]:
        """`catching_up`: a read of bytes a flight handed to a lone reader before this read
        came; its flights fill no cache and hand nothing on, so that reads coming later still
        follow them instead of reading those bytes again."""
        assert self.fanout is not None
        fanout, cache = self.fanout, self.cache
        name = EdgeCache.name(location, digest)
        position = start
        join = True  # a read that a flight left behind without a byte starts its own next
        use_cache = cache is not None  # until the cache failed this read
        hit = False  # whether the cache served this read bytes (a hit is counted once)
        while position < end:
            follower, behind, started = None, None, False
            flight = fanout.find(location, position) if join else None
            if flight is None and cache is not None and use_cache and join and cache.holds(name):
                # hits that come together share one decryption, as misses share one read
                flight = fanout.start_cached(location, position, end, self._cached(name, position, end))
                started = True
            elif flight is None and cache is not None and use_cache:
                async with contextlib.aclosing(self._cached(name, position, end)) as pieces:
                    async for cached in pieces:
                        position += len(cached)
                        hit = self._served(name, len(cached), hit)
                        yield cached
                        del cached  # the driver reuses a buffer nobody holds
                if position >= end:
                    return
                use_cache = False
                flight = fanout.find(location, position) if join else None
            if flight is None and join and (passed := fanout.handed_on_past(location, position)):
                # its bytes up to `behind` went to a lone reader: read those on their own, then follow
                follower = passed.join_behind(end)
                if follower is not None:
                    flight, behind = passed, follower.cursor
            if flight is None:
                flight = self._start(location, digest, size, position, end, catching_up)
            elif not started:
                fanout.counters.joined += 1
            if follower is None:
                follower = flight.join(position, end)
            try:
                if behind is not None:
                    gap = self._shared(location, digest, size, position, behind, catching_up=True)
                    async with contextlib.aclosing(gap):
                        async for chunk in gap:
                            position += len(chunk)
                            yield chunk
                            del chunk
                before = position
                async for chunk in flight.pieces(follower):
                    position += len(chunk)
                    if flight.of_cache:
                        hit = self._served(name, len(chunk), hit)
                    yield chunk
                    del chunk
            finally:
                flight.leave(follower)
            join = position > before
            if flight.of_cache and position < end:
                # left behind (a slow client): on its own from the cache file; else the cache failed
                join, use_cache = not follower.detached, follower.detached

    def _start(
        self, location: str, digest: str, size: int, start: int, end: int, catching_up: bool
    ) -> Flight:
        assert self.fanout is not None
        cache = self.cache
        if catching_up:
            return self.fanout.start(location, start, end, hand_on=False)
        if cache is None or start != 0 or size > cache.max_bytes or not cache.health.up:
            return self.fanout.start(location, start, end)
        name = EdgeCache.name(location, digest)
        return self.fanout.start(location, 0, size, lambda: cache.fill(name, digest, size))

    async def _cached(self, name: str, start: int, end: int) -> AsyncGenerator[Piece, None]:
        """What the cache holds of [start, end): all of it, nothing (a miss), or the bytes up to
        a failure of its file (then the file is discarded and the caller goes on elsewhere)."""
        assert self.cache is not None
        cache = self.cache
        try:
            async with contextlib.aclosing(cache.read(name, start, end)) as chunks:
                async for chunk in chunks:
                    yield chunk  # type: ignore[misc]
                    del chunk
        except FileNotFoundError:
            cache.counters.misses += 1
        except BlobIntegrityError as exc:  # SECURITY: never served; the store has the blob
            log.warning("edge cache entry %s failed its checks (%s): discarded", name, exc)
            with contextlib.suppress(OSError):
                await cache.discard(name)
        except OSError as exc:
            cache.health.failed(exc)

    def _served(self, name: str, length: int, hit: bool) -> bool:
        """Count `length` bytes the cache served a read (`hit`: it served it bytes before)."""
        assert self.cache is not None
        if not hit:
            self.cache.counters.hits += 1
            self.cache.touch(name)
        self.cache.counters.served_bytes += length
        return True

    async def discard(self, location: str, digest: str) -> None:
        """Make a blob's cached bytes (and those a lingering flight holds) go at once (garbage
        collection calls this when it deletes a blob's bytes; the metadata row has gone first,
        so no replica serves them anyway)."""
        if self.fanout is not None:
            self.fanout.forget(location)
        if self.cache is not None:
            await self.cache.discard(EdgeCache.name(location, digest))

    async def close(self) -> None:
        if self.cache is not None:
            await self.cache.close()
