"""A large S3 GET body received straight into buffers that go on to the client as they are.

Through aiohttp every body byte is copied twice in the gateway: uvloop makes a bytes object of
each recv and aiohttp's parser copies each body piece out of it again. For a large read the
driver takes the connection over once aiohttp has parsed the headers: the socket is then read
with recv_into (asyncio.BufferedProtocol) into fresh buffers handed on without any copy. The
connection cannot go back to aiohttp's pool in the middle of a message, so it is closed at the
end: worth it only for reads much larger than a connection setup.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import ClientPayloadError

from ..buffers import uninitialized

__all__ = ["can_take_over", "take_over"]

Piece = bytes | memoryview


def can_take_over(response: Any, length: int) -> bool:
    """Whether aiohttp's `response` carries exactly `length` raw body bytes, not yet all read."""
    headers = response.headers
    return (
        response.connection is not None
        and response.connection.transport is not None
        and headers.get("Content-Length") == str(length)
        and "Transfer-Encoding" not in headers
        and headers.get("Content-Encoding", "identity") == "identity"
    )


def take_over(response: Any, length: int, buffer_size: int, stall: float) -> AsyncIterator[Piece]:
    """The body of aiohttp's `response` (`can_take_over` checked), read from its socket from now
    on; TimeoutError after `stall` seconds without a byte. Closing `response` afterwards closes
    the connection (it must not be released to the pool)."""
    stream = response.content
    exc = stream.exception()
    if exc is not None:
        raise exc
    early = stream.read_nowait(-1)  # what came with the headers; nothing arrives in between
    transport = response.connection.transport
    reader = _BodyReader(transport, length - len(early), buffer_size, stall)
    if reader.remaining:
        transport.set_protocol(reader)
        transport.resume_reading()  # aiohttp may have paused it (its buffer was full)
    return reader.pieces(early)


class _BodyReader(asyncio.BufferedProtocol):
    """Receives `remaining` bytes into buffers of `buffer_size`, handing on each filled stretch
    as a memoryview: a buffer is never written again where a stretch of it was handed on."""

    def __init__(self, transport: asyncio.Transport, remaining: int, buffer_size: int, stall: float) -> None:
        self.remaining = remaining  # bytes not received yet
        self._transport = transport
        self._buffer_size = buffer_size
        self._stall = stall
        self._buffer = memoryview(b"")
        self._start = self._filled = 0  # the buffer's stretch not handed on: [start, filled)
        self._ready: collections.deque[memoryview] = collections.deque()
        self._queued = 0
        self._paused = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None

    # --- protocol (called by the transport) ------------------------------------------------

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._filled == len(self._buffer):
            self._buffer = memoryview(uninitialized(max(1, min(self._buffer_size, self.remaining))))
            self._start = self._filled = 0
        return self._buffer[self._filled :]

    def buffer_updated(self, nbytes: int) -> None:
        self._filled += nbytes
        self.remaining -= nbytes
        if self.remaining < 0:
            self._fail(ClientPayloadError("the S3 store sent more than the response's Content-Length"))
            return
        if self._filled == len(self._buffer) or not self.remaining or (self._waiter and self._worth_it()):
            self._hand_on()
        if self._queued > 2 * self._buffer_size and not self._paused:
            self._paused = True  # the client is slower than the store: hold the store back
            self._transport.pause_reading()

    def eof_received(self) -> bool:
        self.connection_lost(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.remaining:
            cause = f": {exc!r}" if exc else ""
            self._fail(ClientPayloadError(f"the S3 store's connection ended before the body did{cause}"))

    # --- consumer --------------------------------------------------------------------------

    async def pieces(self, early: bytes) -> AsyncIterator[Piece]:
        if early:
            yield early
        while True:
            if not self._ready and self._worth_it():
                self._hand_on()  # the consumer is ready before the buffer is full: take what is there
            if self._ready:
                piece = self._ready.popleft()
                self._queued -= len(piece)
                if self._paused and self._queued <= self._buffer_size:
                    self._paused = False
                    self._transport.resume_reading()
                yield piece
            elif self._error is not None:
                raise self._error
            elif not self.remaining:
                return
            else:
                self._waiter = asyncio.get_running_loop().create_future()
                try:
                    async with asyncio.timeout(self._stall):
                        await self._waiter
                finally:
                    self._waiter = None

    def _worth_it(self) -> bool:
        """Whether the stretch not handed on is worth a trip through the consumer: each piece
        costs the same Python, so while the store is the slow side, tiny pieces waste CPU."""
        return self._filled - self._start >= self._buffer_size // 4

    def _hand_on(self) -> None:
        piece = self._buffer[self._start : self._filled]
        self._start = self._filled
        self._ready.append(piece)
        self._queued += len(piece)
        self._wake()

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
