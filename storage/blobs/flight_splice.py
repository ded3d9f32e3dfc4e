"""A flight's bytes handed to a lone reader still on the store's socket, for the kernel to move.

A flight with one reader and no spool (a single pull: the common case outside a storm) needs
none of its bytes in memory: its reader's client can have them spliced socket to socket
(s3_body.py), with no copy in this process, as a read without flights would. So while its reader
is alone, the flight hands the store's body on in slices of SLICE bytes (`Handoff`). A read that
comes meanwhile follows from the end of the slice being moved and reads the bytes before that on
its own (at most a slice more from the store, once per late read: BlobReads); from then on the
flight receives the bytes into memory for everyone, as it does when a read comes before the body.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from .base import Piece, SocketStretch

if TYPE_CHECKING:
    from .flight_follower import Follower

SLICE = 4 * 1024 * 1024  # bytes handed on at a time: what a read coming late reads on its own


class Handoff:
    """A slice out to one reader: `done` is True once its consumer took every byte, False when
    it let go of it before (the bytes after it on the socket are then out of reach)."""

    def __init__(self, reader: Follower, cursor: int, stretch: SocketStretch) -> None:
        self.reader = reader
        self.stretch = CountedStretch(stretch)
        self.end = cursor + len(stretch)
        self.done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def settle(self) -> bool:
        whole = self.stretch.whole
        if not self.done.done():
            self.done.set_result(whole)
        return whole


class CountedStretch(SocketStretch):
    """A stretch that tells whether its consumer took every byte of it."""

    def __init__(self, stretch: SocketStretch) -> None:
        self._stretch = stretch
        self._taken = 0

    @property
    def whole(self) -> bool:
        return self._taken == len(self._stretch)

    def __len__(self) -> int:
        return len(self._stretch)

    async def splice_to(self, fd: int) -> bool:
        moved = await self._stretch.splice_to(fd)
        if moved:
            self._taken = len(self._stretch)
        return moved

    async def __aiter__(self) -> AsyncIterator[Piece]:
        async for piece in self._stretch:
            self._taken += len(piece)
            yield piece

    def take(self, length: int) -> SocketStretch:
        raise TypeError("a slice handed on is consumed whole")
