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
  (the edge cache's file being filled, which holds every byte before the floor). A flight
  without one (no cache, or another worker fills the blob) starts a *spill* then, a private
  encrypted temporary file, from the first byte in memory on (spill.py): one read of the store
  per flight however slow its readers. Only when that fails are they *detached*: their read
  goes on without this flight (BlobReads starts another from their offset). A follower reading
  the spool comes back to memory once it catches up.
- **The spool has priority.** The cache fill is never shed: its bytes are what later reads are
  served from. It is written about as fast as a socket (AES-GCM and SHA-256 in a thread, about
  1 GB/s here), and dropped if it stops moving for `FILL_STALL` seconds while someone waits.
- **Nobody's leaving ends the others' reads.** The flight is a task of its own: a client that
  disconnects (the first one too) only leaves; the read of the store stops when the last
  follower has left.
- **Failures reach everyone.** A store that fails mid-read fails every follower when it reaches
  that point, with an exception of its own (the same type and message): never a short body
  that looks complete.

- **A small blob lingers.** A flight that ended holding all its bytes in memory (a blob that
  fits the window) stays joinable `linger` seconds after its last reader left, the lingering
  ones of a process holding at most `linger_bytes` (the oldest go first): in a rollout nodes
  keep asking for a small layer for as long as the storm lasts, and without an edge cache each
  would otherwise be a new read of the store once the previous readers are done.

Range reads follow a flight whose window holds their first byte or will within half a window;
past the flight's end they go on with another (BlobReads). Flights live per process (per
worker); the edge cache is what the workers of a replica share.

The parts: a flight and its followers (flight.py), the bytes it holds in memory
(flight_window.py), its spool (spool.py) or spill file (spill.py); here, the flights of a
process by blob.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..config import LINGER_BYTES, SPILL_BYTES
from .base import Piece, SocketStretch
from .flight import Flight
from .spill import Spill
from .spool import OpenSpool, Spool

__all__ = ["WINDOW", "FanoutCounters", "Flight", "Piece", "ReadFanout"]

WINDOW = 16 * 1024 * 1024  # bytes of a flight held in memory, at most
LINGER = 10.0  # seconds a flight holding a whole blob in memory stays joinable after its last reader


@dataclass
class FanoutCounters:
    flights: int = 0  # reads of the store started
    store_bytes: int = 0  # bytes those reads received
    joined: int = 0  # reads that followed a flight another read had started
    spooled: int = 0  # followers moved from memory to the spool
    detached: int = 0  # followers that left a flight before their end (without a spool)
    spills: int = 0  # flights that spooled to a spill file for their laggards
    spills_refused: int = 0  # spill files not opened: the open ones held `spill_bytes` already
    spliced: int = 0  # bytes of store_bytes handed to a lone reader on the store's socket
    revived: int = 0  # reads that followed a lingering flight (no read of the store)
    cache_flights: int = 0  # reads of an edge cache entry shared by the reads that came with them


@dataclass
class ReadFanout:
    """The flights of one process, by blob location."""

    source: Callable[[str, int, int], AsyncIterator[Piece | SocketStretch]]
    window: int = WINDOW
    hand_on_after: int = -1  # bytes of a flight always received into memory; -1: a window's
    spill: bool = True  # whether a flight without a spool spills for its laggards (spill.py)
    spill_dir: Path | None = None  # where spill files go; None: the system's temporary directory
    spill_bytes: int = SPILL_BYTES  # most bytes open spill files may hold at once (their blobs' rest)
    spilling: int = 0  # bytes reserved by the spill files open now
    linger: float = LINGER  # seconds a flight holding its whole blob stays after its last reader
    linger_bytes: int = LINGER_BYTES  # most bytes the lingering flights hold at once
    counters: FanoutCounters = field(default_factory=FanoutCounters)
    _flights: dict[str, list[Flight]] = field(default_factory=dict)
    _lingering: dict[Flight, asyncio.TimerHandle] = field(default_factory=dict)  # oldest first

    def __post_init__(self) -> None:
        if self.hand_on_after < 0:
            self.hand_on_after = self.window

    def find(self, location: str, offset: int) -> Flight | None:
        """A flight a read of `location` from `offset` can follow now."""
        for flight in self._flights.get(location, ()):
            if flight.accepts(offset):
                return flight
        return None

    def handed_on_past(self, location: str, offset: int) -> Flight | None:
        """A flight whose bytes from `offset` went to a lone reader, and which goes on."""
        for flight in self._flights.get(location, ()):
            if flight.handed_on_past(offset):
                return flight
        return None

    def start(
        self, location: str, start: int, end: int, open_spool: OpenSpool | None = None, hand_on: bool = True
    ) -> Flight:
        """A flight of bytes [start, end); with `open_spool`, also written to the spool it opens;
        with `hand_on`, its body handed to its reader on the store's socket while it is alone."""
        source = self.source(location, start, end)
        flight = Flight(self, location, start, end, source, open_spool, hand_on)
        self._flights.setdefault(location, []).append(flight)
        self.counters.flights += 1
        return flight

    def start_cached(self, location: str, start: int, end: int, source: AsyncIterator[Piece]) -> Flight:
        """A flight of bytes [start, end) from `source`, an edge cache entry's, which may end
        short (the entry gone or failing): its followers then go on elsewhere."""
        flight = Flight(self, location, start, end, source, None, hand_on=False, of_cache=True)
        self._flights.setdefault(location, []).append(flight)
        self.counters.cache_flights += 1
        return flight

    def open_spill(self, start: int, end: int) -> OpenSpool:
        """What opens a spill file of a flight's bytes [start, end): none (the laggards read the
        store on their own) when the files open already hold `spill_bytes` between them."""
        size = end - start

        async def opening() -> Spool | None:
            if self.spilling + size > self.spill_bytes:
                self.counters.spills_refused += 1
                return None
            self.spilling += size
            try:
                return await Spill.open(self.spill_dir, start, on_close=lambda: self._unreserve(size))
            except BaseException:
                self.spilling -= size
                raise

        return opening

    def _unreserve(self, size: int) -> None:
        self.spilling -= size

    def _settled(self, flight: Flight) -> None:
        """A flight's read and readers are over: it lingers if it holds its whole range in
        memory and the lingering ones have room for it, else it goes."""
        size = flight.end - flight.start
        if not flight.held_whole or self.linger <= 0 or size > self.linger_bytes:
            self._remove(flight)
            return
        while self.lingering_bytes + size > self.linger_bytes:
            self._remove(next(iter(self._lingering)))
        loop = asyncio.get_running_loop()
        self._lingering[flight] = loop.call_later(self.linger, self._remove, flight)

    def _revived(self, flight: Flight) -> None:
        """A read follows a lingering flight: it is no longer lingering (until it settles again)."""
        handle = self._lingering.pop(flight, None)
        if handle is not None:
            handle.cancel()
            self.counters.revived += 1

    def forget(self, location: str) -> None:
        """Drop the lingering flights of `location` (its blob was deleted)."""
        for flight in [flight for flight in self._lingering if flight.location == location]:
            self._remove(flight)

    def _remove(self, flight: Flight) -> None:
        handle = self._lingering.pop(flight, None)
        if handle is not None:
            handle.cancel()
        flights = self._flights.get(flight.location)
        if flights is not None and flight in flights:
            flights.remove(flight)
            if not flights:
                del self._flights[flight.location]

    def in_flight(self) -> int:
        """Flights being read (not the lingering ones)."""
        return sum(len(flights) for flights in self._flights.values()) - len(self._lingering)

    def lingering(self) -> int:
        return len(self._lingering)

    @property
    def lingering_bytes(self) -> int:
        """Bytes the lingering flights hold now."""
        return sum(flight.end - flight.start for flight in self._lingering)
