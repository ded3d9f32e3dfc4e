"""A flight: one read of the store, bytes [start, end) of one blob, and the reads that follow it
(fanout.py tells why and the rules). The store's bytes go to a window in memory
(flight_window.py) that every follower reads at its own pace, and to the spool (spool.py) when
the flight fills one; here is who follows where (memory, the spool, or on its own), how the
store's read is paced by the followers, and how a follower that holds the others back is shed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING

from .base import Piece, SocketStretch
from .flight_failure import fresh as _fresh
from .flight_follower import Follower
from .flight_follower import Mode as _Mode
from .flight_splice import SLICE, Handoff
from .flight_window import Window
from .spool import FILL_STALL, OpenSpool, Spool, opened, write_batched

if TYPE_CHECKING:
    from .fanout import ReadFanout

log = logging.getLogger(__name__)


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
        source: AsyncIterator[Piece | SocketStretch],
        open_spool: OpenSpool | None,
        hand_on: bool = True,
        of_cache: bool = False,
    ) -> None:
        self._fanout = fanout
        self.location = location
        self.start, self.end = start, end
        self._memory = Window(start)
        self._window = fanout.window
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
        self._may_spill = not of_cache and fanout.spill  # laggards to a spill file (spill.py)
        if open_spool is not None:
            self._filler = Follower(start, end, _Mode.MEMORY, fill=True)
            self._followers.add(self._filler)
            self._fill_task = asyncio.create_task(self._fill(open_spool))
        self._may_hand_on = hand_on  # whether a lone reader may be handed the store's body
        self.of_cache = of_cache  # reads the edge cache, not the store: may end short
        self._handoff: Handoff | None = None  # a slice of the body out to a lone reader
        self._handed_on = False  # whether bytes of this flight went by without entering memory
        self._settled = False
        self._pump_task = asyncio.create_task(self._pump(source))

    # --- following -----------------------------------------------------------------------------

    def accepts(self, offset: int) -> bool:
        """Whether a read from `offset` can follow this flight now."""
        if self._error is not None or self._stopped or not self.start <= offset < self.end:
            return False
        if self._low() <= offset <= self.position + self._window // 2:
            return True  # its bytes are in memory, or will soon be (a range a little ahead)
        spool = self._spool  # followed while it grows, or once whole (not a given-up fill's)
        if spool is None or not spool.start <= offset < spool.written:
            return False
        return self._filler is not None or spool.written == self.end

    def handed_on_past(self, offset: int) -> bool:
        """Whether bytes from `offset` went to a lone reader without entering memory, and the
        flight goes on: a read from there can follow it after reading them on its own."""
        return (
            self._handed_on
            and self._pumping
            and self._error is None
            and not self._stopped
            and self.start <= offset < self._low()
        )

    def join_behind(self, end: int) -> Follower | None:
        """A follower from the first byte the flight will still hold in memory (None: none of
        [that, end)); the caller reads the bytes before it on its own meanwhile."""
        cursor = self._low()
        return self.join(cursor, end) if cursor < min(end, self.end) else None

    def _low(self) -> int:
        """The first byte a follower joining now can read from memory."""
        return self._handoff.end if self._handoff is not None else self.base

    def join(self, start: int, end: int) -> Follower:
        if self._settled:  # it lingered (fanout.py): it is read again
            self._settled = False
            self._fanout._revived(self)
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
        self._settle()

    async def pieces(self, follower: Follower) -> AsyncGenerator[Piece | SocketStretch, None]:
        """Bytes [cursor, end) as they come. Ends early (quietly) only when the follower was
        detached: the caller goes on from `follower.cursor` without this flight."""
        while follower.cursor < follower.end:
            if follower.mode is _Mode.SPOOL and self.base <= follower.cursor <= self.position:
                follower.mode = _Mode.MEMORY  # caught up: the window has its bytes again
            handoff = self._handoff
            if handoff is not None and handoff.reader is follower:
                try:
                    yield handoff.stretch
                finally:
                    self._handed(handoff)
                if not handoff.stretch.whole:
                    raise OSError(f"blob {self.location}: a stretch of the store's body was not read whole")
                continue
            if follower.mode is _Mode.MEMORY:
                piece = self._memory.piece(follower.cursor, follower.end)
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
                    stop = min(follower.end, spool.written, follower.cursor + self._window // 64)
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

    @property
    def base(self) -> int:
        """The first byte held in memory."""
        return self._memory.base

    @property
    def position(self) -> int:
        """The next byte from the store."""
        return self._memory.position

    def _floor(self) -> int:
        """The first byte someone in memory still needs."""
        floor = self.position
        for follower in self._followers:
            if follower.mode is _Mode.MEMORY:
                held = follower.cursor
                if follower.fill:  # bytes are dropped only once they are in the spool
                    held = self._spool.written if self._spool is not None else follower.cursor
                floor = min(floor, held)
        return floor

    def _trim(self) -> None:
        self._memory.trim(self._floor(), self._window)

    async def _shed(self) -> None:
        """Move the followers that hold the window back out of memory (someone waits): those
        lagging half a window that do not move when given their turn. A follower that lags only
        because the event loop has not run it yet since the last pieces came is no slow reader;
        one whose client does not take its bytes (its task waits for the socket) is. Nobody is
        moved while the spool is being opened: the fill holds the window at the flight's start
        until then anyway, and a laggard moved a moment later goes to the spool, not the store."""
        if self._filler is not None and self._spool is None:
            return
        if self._spill():
            return  # the laggards go there once it is open
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

    async def _pump(self, source: AsyncIterator[Piece | SocketStretch]) -> None:
        try:
            async for chunk in source:
                if isinstance(chunk, (bytes, bytearray, memoryview)):
                    await self._received(chunk)
                elif not await self._hand_on(chunk):
                    self._stopped = True  # its reader let go of a slice: the rest is out of reach
                    return
            if self.position != self.end and self.of_cache:
                self._stopped = True  # the entry went or failed: the followers go on elsewhere
            elif self.position != self.end:  # the drivers check this; a wrong count must not pass
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

    async def _received(self, piece: Piece) -> None:
        self._memory.append(piece)
        if self._readers > 1 and self.position - self.start > self._window:
            self._spill()  # before the first bytes leave memory: later reads from there follow it
        if not self.of_cache:
            self._fanout.counters.store_bytes += len(piece)
        self._trim()
        self._announce()
        await self._room()

    async def _hand_on(self, stretch: SocketStretch) -> bool:
        """Bytes on the store's socket: to a lone reader in slices, while it is alone (the
        kernel may move them to its client); the rest into memory. False: a slice was let go.
        The first `hand_on_after` bytes always go to memory, where reads that come soon after
        the first (a storm does not arrive in one instant) find them as without hand-ons."""
        while len(stretch) and (reader := self._lone()) is not None:
            early = self.start + self._fanout.hand_on_after - self.position
            if early > 0:
                async for piece in stretch.take(min(early, len(stretch))):
                    await self._received(piece)
                continue
            if reader.cursor < self.position:  # still taking the bytes received before
                await self._paused()
                continue
            if reader.cursor > self.position:  # a range a little ahead: it waits in memory
                break
            length = min(len(stretch), SLICE, reader.end - self.position)
            self._handoff = Handoff(reader, self.position, stretch.take(length))
            self._handed_on = True
            self._announce()
            if not await self._handoff.done:
                return False
        if len(stretch):
            async for piece in stretch:
                await self._received(piece)
        return True

    def _lone(self) -> Follower | None:
        """The reader of a flight it alone follows, filling no spool, if it reads from memory."""
        if self._readers != 1 or self._filler is not None or not self._may_hand_on:
            return None
        reader = next(iter(self._followers))
        return reader if reader.mode is _Mode.MEMORY and self.position < reader.end else None

    def _handed(self, handoff: Handoff) -> None:
        """A slice's reader is back (or gone): the flight goes on past the slice, or stops."""
        self._handoff = None
        if handoff.settle():
            length = len(handoff.stretch)
            self._memory.skip(length)
            handoff.reader.cursor += length
            self._fanout.counters.store_bytes += length
            self._fanout.counters.spliced += length

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
            await self._paused(timeout)

    async def _paused(self, seconds: float | None = None) -> None:
        """Until a follower moves or leaves (or `seconds` pass)."""
        self._pump_waiter = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait([self._pump_waiter], timeout=seconds)
        finally:
            self._pump_waiter = None

    async def _fill(self, open_spool: OpenSpool) -> None:
        assert self._filler is not None
        follower = self._filler
        spool = await opened(open_spool, self.location)
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
        try:
            await write_batched(spool, self._received_by(follower), self._spooled)
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

    def _spill(self) -> bool:
        """Spool to a spill file from the first byte in memory on (once a flight, without a spool)."""
        if not self._may_spill or self._filler is not None or self._spool is not None:
            return False
        self._may_spill = False
        self._fanout.counters.spills += 1
        self._filler = Follower(self.base, self.end, _Mode.MEMORY, fill=True)
        self._followers.add(self._filler)
        self._fill_task = asyncio.create_task(self._fill(self._fanout.open_spill(self.base, self.end)))
        return True

    async def _received_by(self, follower: Follower) -> AsyncIterator[Piece]:
        async for piece in self.pieces(follower):
            assert isinstance(piece, (bytes, bytearray, memoryview))  # only a lone reader is handed on
            yield piece

    def _spooled(self) -> None:
        self._announce()  # spool readers may go on
        self._progress()  # the window may move on

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
        """Once the store's read and the fill are over and its last reader has left (until then
        later reads follow what it holds), the flight lingers if it holds all its bytes in
        memory (fanout.py); else later reads find the cache (or start anew)."""
        if not self._settled and not self._pumping and self._fill_task is None and not self._readers:
            self._settled = True
            self._fanout._settled(self)
        self._release_spool()

    @property
    def held_whole(self) -> bool:
        """Whether the flight read all its bytes and holds them in memory."""
        return (
            not self._pumping
            and self._error is None
            and not self._stopped
            and self.base == self.start
            and self.position == self.end
        )

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
