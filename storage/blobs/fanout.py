"""Concurrent reads of one blob share one read from the store.

A rollout asks for the same new layers on hundreds of nodes within seconds; read one by one,
every pull of every node is a full read from S3. Here the first read of a blob starts a
*flight*: one task reads the store and keeps what it read in a shared window of memory, and
every read of the same bytes that comes while it runs *follows* it, each at its own pace, from
the first byte the store sent on (no waiting for the whole blob).

- **Bounded.** The store is read ahead while the slowest follower in memory (the floor) is
  less than `window` bytes behind; what was read stays in memory for late joiners as long as
  the window has room, so a flight holds at most `window` bytes (and one piece).
- **A slow reader holds back nobody.** When the window is full and another follower waits for
  bytes, the followers lagging more than half a window leave memory: to the flight's *spool*
  (the edge cache's file being filled, which holds every byte before the floor), or, without a
  spool, *detached*: their read goes on without this flight (BlobReads starts another from their
  offset). A follower reading the spool comes back to memory once it catches up.
- **The spool has priority.** The cache fill is never shed: its bytes are what later reads are
  served from. It is written about as fast as a socket (AES-GCM and SHA-256 in a thread, about
  1 GB/s here), and dropped if it stops moving for `FILL_STALL` seconds while someone waits.
- **Nobody's leaving ends the others' reads.** The flight is a task of its own: a client that
  disconnects (the first one too) only leaves; the read of the store stops when the last
  follower has left.
- **Failures reach everyone.** A store that fails mid-read fails every follower when it reaches
  that point, with an exception of its own (the same type and message): never a short body
  that looks complete.

Range reads follow a flight whose window holds their first byte or will within half a window;
past the flight's end they go on with another (BlobReads). Flights live per process (per
worker); the edge cache is what the workers of a replica share.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import copy
import enum
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger(__name__)

WINDOW = 16 * 1024 * 1024  # bytes of a flight held in memory, at most
FILL_STALL = 10.0  # seconds a cache fill may hold back waiting readers without moving

Piece = bytes | bytearray | memoryview
OpenSpool = Callable[[], Awaitable["Spool | None"]]  # None: this flight fills no spool after all


class Spool(Protocol):
    """Where every byte of a flight also goes, from its start: the edge cache's fill."""

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


@dataclass
class FanoutCounters:
    flights: int = 0  # reads of the store started
    store_bytes: int = 0  # bytes those reads received
    joined: int = 0  # reads that followed a flight another read had started
    spooled: int = 0  # followers moved from memory to the spool
    detached: int = 0  # followers that left a flight before their end (without a spool)


class _Mode(enum.Enum):
    MEMORY = 1
    SPOOL = 2
    DETACHED = 3


@dataclass(eq=False)
class Follower:
    """One read following a flight: the next byte it needs, where it stops, where it reads."""

    cursor: int
    end: int
    mode: _Mode
    fill: bool = False  # the spool's writer: never shed, holds the window at `spool.written`


class Flight:
    """One read of the store, bytes [start, end) of one blob, and the reads that follow it.

    Use: `follower = flight.join(start, end)`, then `async for piece in flight.pieces(follower)`,
    and `flight.leave(follower)` in a `finally` (idempotent)."""

    def __init__(
        self,
        fanout: ReadFanout,
        location: str,
        start: int,
        end: int,
        source: AsyncIterator[Piece],
        open_spool: OpenSpool | None,
    ) -> None:
        self._fanout = fanout
        self.location = location
        self.start, self.end = start, end
        self.base = self.position = start  # the window: bytes [base, position)
        self._window = fanout.window
        self._pieces: list[memoryview] = []
        self._offsets: list[int] = []  # where each piece starts
        self._followers: set[Follower] = set()
        self._readers = 0  # followers that are not the fill
        self._waiting = 0  # followers in memory waiting at the head for the store
        self._error: BaseException | None = None
        self._stopped = False  # the store's read was ended early: nobody reads any more
        self._pumping = True
        loop = asyncio.get_running_loop()
        self._news: asyncio.Future[None] = loop.create_future()  # for followers: bytes, an end
        self._pump_waiter: asyncio.Future[None] | None = None  # the store's read, waiting for room
        self._spool: Spool | None = None  # once opened
        self._filler: Follower | None = None  # while the spool is (to be) filled
        self._fill_task: asyncio.Task[None] | None = None
        if open_spool is not None:
            self._filler = Follower(start, end, _Mode.MEMORY, fill=True)
            self._followers.add(self._filler)
            self._fill_task = asyncio.create_task(self._fill(open_spool))
        self._settled = False
        self._pump_task = asyncio.create_task(self._pump(source))

    # --- following -----------------------------------------------------------------------------

    def accepts(self, offset: int) -> bool:
        """Whether a read from `offset` can follow this flight now."""
        if self._error is not None or self._stopped or not self.start <= offset < self.end:
            return False
        if self.base <= offset <= self.position + self._window // 2:
            return True  # its bytes are in memory, or will soon be (a range a little ahead)
        return self._filler is not None and self._spool is not None and offset < self._spool.written

    def join(self, start: int, end: int) -> Follower:
        mode = _Mode.MEMORY if start >= self.base else _Mode.SPOOL
        follower = Follower(start, min(end, self.end), mode)
        self._followers.add(follower)
        self._readers += 1
        return follower

    def leave(self, follower: Follower) -> None:
        if follower not in self._followers:
            return
        self._followers.discard(follower)
        self._readers -= 1
        if not self._readers and self._pumping and self.position < self.end:
            # nobody reads any more: the store's read and the fill stop (a fill is for readers;
            # one that has all the bytes already finishes)
            self._stopped = True
            self._pump_task.cancel()
            if self._fill_task is not None:
                self._fill_task.cancel()
        self._progress()
        self._release_spool()

    async def pieces(self, follower: Follower) -> AsyncGenerator[Piece, None]:
        """Bytes [cursor, end) as they come. Ends early (quietly) only when the follower was
        detached: the caller goes on from `follower.cursor` without this flight."""
        while follower.cursor < follower.end:
            if follower.mode is _Mode.SPOOL and self.base <= follower.cursor <= self.position:
                follower.mode = _Mode.MEMORY  # caught up: the window has its bytes again
            if follower.mode is _Mode.MEMORY:
                piece = self._piece(follower.cursor, follower.end)
                if piece is not None:
                    follower.cursor += len(piece)
                    self._progress()
                    yield piece
                    continue
                if self._error is not None:
                    raise _fresh(self._error)
                if not self._pumping:
                    return  # the flight ended before this follower's end (or was stopped)
                await self._wait(at_head=not follower.fill)
            elif follower.mode is _Mode.SPOOL:
                spool = self._spool
                assert spool is not None  # released only once nobody follows
                if follower.cursor < spool.written:
                    stop = min(follower.end, spool.written, follower.cursor + self._window // 4)
                    data = await spool.read(follower.cursor, stop)
                    follower.cursor += len(data)
                    yield data
                    continue
                if self._filler is None or self._stopped:  # the spool will not grow: on its own
                    if self._error is not None:
                        raise _fresh(self._error)
                    follower.mode = _Mode.DETACHED
                    self._fanout.counters.detached += 1
                    return
                await self._wait(at_head=False)
            else:
                return

    # --- the window ----------------------------------------------------------------------------

    def _piece(self, cursor: int, end: int) -> memoryview | None:
        """The bytes from `cursor` to the end of the piece holding them (at most to `end`)."""
        if cursor >= self.position or cursor < self.base:
            return None
        index = bisect.bisect_right(self._offsets, cursor) - 1
        piece, offset = self._pieces[index], self._offsets[index]
        return piece[cursor - offset : min(len(piece), end - offset)]

    def _floor(self) -> int:
        """The first byte someone in memory still needs."""
        floor = self.position
        for follower in self._followers:
            if follower.mode is _Mode.MEMORY:
                held = follower.cursor
                if follower.fill:  # bytes are dropped only once they are in the spool
                    held = self._spool.written if self._spool is not None else self.start
                floor = min(floor, held)
        return floor

    def _trim(self) -> None:
        """Drop what nobody in memory needs, oldest first, but only as far as the window must:
        while it has room, bytes already read stay for reads that join late (a storm does not
        arrive in one instant)."""
        floor = self._floor()
        drop = 0
        while (
            drop < len(self._pieces)
            and self.position - self._offsets[drop] > self._window
            and self._offsets[drop] + len(self._pieces[drop]) <= floor
        ):
            drop += 1
        if drop:
            del self._pieces[:drop]
            del self._offsets[:drop]
        self.base = self._offsets[0] if self._pieces else self.position

    async def _shed(self) -> None:
        """Move the followers that hold the window back out of memory (someone waits): those
        lagging half a window that do not move when given their turn. A follower that lags only
        because the event loop has not run it yet since the last pieces came is no slow reader;
        one whose client does not take its bytes (its task waits for the socket) is."""
        laggards = {
            follower: follower.cursor
            for follower in self._followers
            if follower.mode is _Mode.MEMORY
            and not follower.fill
            and self.position - follower.cursor >= self._window // 2
        }
        if not laggards:
            return
        for _ in range(2):  # a turn of the event loop for every task that can run
            await asyncio.sleep(0)
        for follower, cursor in laggards.items():
            if follower.mode is not _Mode.MEMORY or follower.cursor != cursor:
                continue
            if self._filler is not None and self._spool is not None:
                follower.mode = _Mode.SPOOL
                self._fanout.counters.spooled += 1
            else:
                follower.mode = _Mode.DETACHED
                self._fanout.counters.detached += 1
        self._trim()
        self._announce()

    # --- the store's read and the fill ----------------------------------------------------------

    async def _pump(self, source: AsyncIterator[Piece]) -> None:
        try:
            async for piece in source:
                self._pieces.append(memoryview(piece))
                self._offsets.append(self.position)
                self.position += len(piece)
                self._fanout.counters.store_bytes += len(piece)
                self._trim()
                self._announce()
                await self._room()
            if self.position != self.end:  # the drivers check this; a wrong count must not pass
                raise OSError(f"blob {self.location}: the store sent {self.position - self.start} bytes")
        except asyncio.CancelledError:
            self._stopped = True
        except Exception as exc:
            self._error = exc
        finally:
            self._pumping = False
            closing = getattr(source, "aclose", None)
            if closing is not None:
                with contextlib.suppress(Exception):
                    await closing()
            self._announce()
            self._settle()

    async def _room(self) -> None:
        """Wait while the window is full; shed laggards when that holds back a waiting reader,
        and give up the fill when it alone does so for FILL_STALL seconds."""
        loop = asyncio.get_running_loop()
        written, since = -1, loop.time()
        while True:
            self._trim()
            if self.position - self._floor() < self._window:
                return
            timeout = None
            if self._waiting:
                await self._shed()
                if self.position - self._floor() < self._window:
                    return
                if self._filler is not None:  # the fill may be the floor: it must move
                    now = self._spool.written if self._spool is not None else self.start
                    if now != written:
                        written, since = now, loop.time()
                    elif loop.time() - since >= FILL_STALL:
                        log.warning("edge cache fill of %s stalled: given up", self.location)
                        self._give_up_spool()
                        continue
                    timeout = FILL_STALL - (loop.time() - since)
            self._pump_waiter = loop.create_future()
            try:
                await asyncio.wait([self._pump_waiter], timeout=timeout)
            finally:
                self._pump_waiter = None

    async def _fill(self, open_spool: OpenSpool) -> None:
        assert self._filler is not None
        follower = self._filler
        opening = asyncio.ensure_future(open_spool())
        try:
            spool = await asyncio.shield(opening)
        except asyncio.CancelledError:  # nobody reads any more: what was opened is discarded
            opening.add_done_callback(_discard_spool)
            spool = None
        except Exception as exc:
            log.debug("edge cache fill of %s not started: %r", self.location, exc)
            spool = None
        if spool is None or self._filler is None:
            if spool is not None:
                await spool.finish(False)
                spool.close()
            self._fill_task = None
            self._give_up_spool()
            self._settle()
            return
        self._spool = spool
        complete = False
        batch = bytearray()
        try:
            async for piece in self.pieces(follower):
                batch += piece
                if len(batch) >= spool.granule:
                    whole = len(batch) - len(batch) % spool.granule
                    full, batch = batch, batch[whole:]
                    del full[whole:]
                    await spool.append(full)  # handed over
                    self._announce()  # spool readers may go on
                    self._progress()  # the window may move on
            if batch:
                await spool.append(batch)
            complete = spool.written == self.end and self._error is None and not self._stopped
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # a store failure the readers report; a disk failure the cache logs
            log.debug("edge cache fill of %s ended: %r", self.location, exc)
        finally:
            self._give_up_spool()
            try:
                await spool.finish(complete)
            finally:
                self._fill_task = None
                self._settle()

    def _give_up_spool(self) -> None:
        """The spool grows no more: the window no longer waits for it, new reads no longer join
        it, and its readers go on without it once they reach its end."""
        if self._filler is None:
            return
        self._followers.discard(self._filler)
        self._filler = None
        if self._fill_task is not None and self._fill_task is not asyncio.current_task():
            self._fill_task.cancel()
        self._announce()
        self._progress()

    def _settle(self) -> None:
        """Once the store's read and the fill are over, later reads find the cache (or start
        anew): the flight leaves the registry."""
        if not self._settled and not self._pumping and self._fill_task is None:
            self._settled = True
            self._fanout._remove(self)
        self._release_spool()

    def _release_spool(self) -> None:
        if self._settled and not self._followers and self._spool is not None:
            self._spool.close()
            self._spool = None

    # --- waking ------------------------------------------------------------------------------

    async def _wait(self, at_head: bool) -> None:
        news = self._news
        if at_head:
            self._waiting += 1
            self._progress()  # the store may be held back by a laggard: let it decide
        try:
            await asyncio.shield(news)
        finally:
            if at_head:
                self._waiting -= 1

    def _announce(self) -> None:
        """Wake the followers: bytes came, or the flight changed."""
        if not self._news.done():
            self._news.set_result(None)
            self._news = asyncio.get_running_loop().create_future()

    def _progress(self) -> None:
        """Wake the store's read if it waits for room."""
        if self._pump_waiter is not None and not self._pump_waiter.done():
            self._pump_waiter.set_result(None)


def _discard_spool(opening: asyncio.Future[Spool | None]) -> None:
    """A spool opened for a flight that had ended meanwhile."""
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


def _fresh(exc: BaseException) -> BaseException:
    """An exception like `exc` for one follower: raising one object in many tasks would chain
    their tracebacks and contexts into each other."""
    try:
        clone = copy.copy(exc)
    except Exception:
        clone = OSError(f"the store's read failed: {exc!r}")
    clone.__cause__ = exc
    clone.__traceback__ = None
    return clone


@dataclass
class ReadFanout:
    """The flights of one process, by blob location."""

    source: Callable[[str, int, int], AsyncIterator[Piece]]
    window: int = WINDOW
    counters: FanoutCounters = field(default_factory=FanoutCounters)
    _flights: dict[str, list[Flight]] = field(default_factory=dict)

    def find(self, location: str, offset: int) -> Flight | None:
        """A flight a read of `location` from `offset` can follow now."""
        for flight in self._flights.get(location, ()):
            if flight.accepts(offset):
                return flight
        return None

    def start(self, location: str, start: int, end: int, open_spool: OpenSpool | None = None) -> Flight:
        """A flight of bytes [start, end); with `open_spool`, also written to the spool it opens."""
        flight = Flight(self, location, start, end, self.source(location, start, end), open_spool)
        self._flights.setdefault(location, []).append(flight)
        self.counters.flights += 1
        return flight

    def _remove(self, flight: Flight) -> None:
        flights = self._flights.get(flight.location)
        if flights is not None and flight in flights:
            flights.remove(flight)
            if not flights:
                del self._flights[flight.location]

    def in_flight(self) -> int:
        return sum(len(flights) for flights in self._flights.values())
