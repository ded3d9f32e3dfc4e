"""A large S3 GET body taken from aiohttp once the headers are in, for the kernel to move it.

Through aiohttp every body byte is copied three times in the gateway: the kernel copies it out
of the socket, uvloop makes a bytes object of each recv and aiohttp's parser copies each body
piece out of that again; sending it on costs a fourth copy, into the client's socket. For a
large read the driver takes the connection over after the headers and yields a `SocketBody`:

- to a client on a plain TCP connection, with the store's connection plain too, the gateway
  splices it: splice(2) moves the bytes socket -> pipe -> socket as page references, so not one
  of them is copied into or out of this process;
- otherwise (TLS on either side) it is read with recv_into (asyncio.BufferedProtocol) into
  fresh buffers that go on to the client as they are: one copy, the kernel's.

The connection is taken from aiohttp for good (`_detach`: nothing of aiohttp may read it again)
and closed at the end, never going back to the pool: worth it only for reads much larger than
a connection setup.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import os
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import AbstractContextManager
from typing import Any

from aiohttp import ClientPayloadError

from ..buffers import uninitialized
from .base import Piece, SocketStretch

__all__ = ["SocketBody", "can_take_over", "take_over"]

Guard = Callable[[], AbstractContextManager[None]]  # the driver's: translates store failures
PIPE_SIZE = 1 << 20  # bytes in flight through the pipe of a splice: fewer, larger moves
_SPLICE = os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK


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


async def take_over(
    response: Any, length: int, buffer_size: int, stall: float, guard: Guard
) -> AsyncGenerator[Piece | SocketBody, None]:
    """The body of aiohttp's `response` (`can_take_over` checked): what aiohttp had received,
    then a SocketBody for the rest, whose waits for the store run inside `guard()`. The
    connection is closed when this generator is (it never goes back to the pool)."""
    transport, early = _detach(response)
    try:
        if early:
            yield early
        if length > len(early):
            yield SocketBody(transport, length - len(early), buffer_size, stall, guard)
    finally:
        transport.close()


def _detach(response: Any) -> tuple[asyncio.Transport, bytes]:
    """Take the response's connection from aiohttp for good: its transport, paused, and the
    body bytes aiohttp had read into its buffer.

    Pausing is not enough. aiohttp gives a connection back to its pool as soon as a body is
    whole in its buffer, and every later read of that buffer (by a consumer still sending it
    on) resumes the connection's protocol: if the pool meanwhile handed the connection to this
    response, aiohttp would read this body into a buffer nobody reads, and the SocketBody would
    wait for bytes that already left the socket. So aiohttp's protocol is cut off from the
    transport (nothing of aiohttp can resume or read it after this), its buffer is emptied,
    and it is told the connection is gone, which is what it is to aiohttp from now on."""
    stream = response.content
    exc = stream.exception()
    if exc is not None:
        raise exc
    protocol = response.connection.protocol
    transport = protocol.transport
    transport.pause_reading()
    protocol.transport = None  # resume_reading() of any reader of this protocol: a no-op now
    pieces = []
    while piece := stream.read_nowait(-1):  # a resumed parser may hand on what it held back
        pieces.append(piece)
    transport.set_protocol(_Parked())
    protocol.connection_lost(None)  # aiohttp lets go: the response closes nothing of ours
    return transport, b"".join(pieces)


class _Parked(asyncio.Protocol):
    """The protocol of a taken-over transport until a SocketBody reads it: it is paused, so
    nothing arrives; a connection lost meanwhile shows when the body is read."""


class SocketBody(SocketStretch):
    """The rest of a body, on the store's connection; a wait of `stall` seconds for the store
    raises TimeoutError (waits for the client have no limit, as aiohttp's writes)."""

    def __init__(
        self, transport: asyncio.Transport, length: int, buffer_size: int, stall: float, guard: Guard
    ) -> None:
        self._transport = transport
        self._length = length
        self._buffer_size = buffer_size
        self._stall = stall
        self._guard = guard

    def __len__(self) -> int:
        return self._length

    def take(self, length: int) -> SocketBody:
        if not 0 < length <= self._length:
            raise ValueError(f"{length} bytes of a stretch of {self._length}")
        self._length -= length
        return SocketBody(self._transport, length, self._buffer_size, self._stall, self._guard)

    async def __aiter__(self) -> AsyncIterator[Piece]:
        reader = _BodyReader(self._transport, self._length, self._buffer_size, self._stall)
        self._transport.set_protocol(reader)
        self._transport.resume_reading()
        try:
            pieces = reader.pieces()
            while True:
                with self._guard():
                    piece = await anext(pieces, None)
                if piece is None:
                    return
                yield piece
        finally:  # the bytes after this stretch stay on the socket for the next one
            self._transport.pause_reading()
            self._transport.set_protocol(_Parked())

    async def splice_to(self, fd: int) -> bool:
        sock = self._transport.get_extra_info("socket")
        if sock is None or self._transport.get_extra_info("ssl_object") is not None:
            return False
        with contextlib.ExitStack() as stack:
            # own descriptors: the event loop watches the originals for their transports
            source, target = os.dup(sock.fileno()), os.dup(fd)
            pipe_out, pipe_in = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            for descriptor in (source, target, pipe_out, pipe_in):
                stack.callback(os.close, descriptor)
            with contextlib.suppress(OSError):  # capped by /proc/sys/fs/pipe-max-size
                fcntl.fcntl(pipe_in, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
            pump = _Pump(source, target, pipe_out, pipe_in, self._length)
            stack.callback(pump.stop)  # before the descriptors close
            with self._guard():
                pump.move()
                while not pump.finished.done():
                    received = pump.received
                    await asyncio.wait([pump.finished], timeout=self._stall)
                    if not pump.finished.done() and pump.received == received and not pump.writing:
                        raise TimeoutError(f"no byte from the S3 store in {self._stall} s")
                pump.finished.result()
        return True


class _Pump:
    """Moves `length` bytes from socket `source` through a pipe to socket `target` with
    splice(2), from event loop callbacks: one call per readiness event, no task switches."""

    def __init__(self, source: int, target: int, pipe_out: int, pipe_in: int, length: int) -> None:
        self._loop = asyncio.get_running_loop()
        self._source, self._target = source, target
        self._pipe_out, self._pipe_in = pipe_out, pipe_in
        self._capacity = fcntl.fcntl(pipe_in, fcntl.F_GETPIPE_SZ)
        self._remaining, self._piped = length, 0  # not yet taken from the source; in the pipe
        self.received = 0
        self.reading = self.writing = False  # whether readiness of source / target is watched
        self.finished: asyncio.Future[None] = self._loop.create_future()

    def move(self) -> None:
        """As far as both sockets allow, then watch what blocks."""
        try:
            while self._move_once():
                pass
        except Exception as exc:  # handed to the waiting coroutine
            self._finish(exc)
            return
        if not self._remaining and not self._piped:
            self._finish(None)
            return
        # each side is watched only while it blocks: the loop is level-triggered
        self._watch_source(bool(self._remaining) and self._piped < self._capacity)
        self._watch_target(self._piped > 0)

    def _move_once(self) -> bool:
        moved = False
        if self._remaining and self._piped < self._capacity:
            try:
                room = min(self._remaining, self._capacity - self._piped)
                n = os.splice(self._source, self._pipe_in, room, flags=_SPLICE)
            except BlockingIOError:
                pass
            except OSError as exc:
                raise ClientPayloadError(f"the S3 store's connection failed: {exc!r}") from exc
            else:
                if not n:
                    raise ClientPayloadError("the S3 store's connection ended before the body did")
                self._remaining -= n
                self._piped += n
                self.received += n
                moved = True
        if self._piped:
            try:
                self._piped -= os.splice(self._pipe_out, self._target, self._piped, flags=_SPLICE)
                moved = True
            except BlockingIOError:
                pass
        return moved

    def _watch_source(self, watch: bool) -> None:
        if watch != self.reading:
            self.reading = watch
            if watch:
                self._loop.add_reader(self._source, self.move)
            else:
                self._loop.remove_reader(self._source)

    def _watch_target(self, watch: bool) -> None:
        if watch != self.writing:
            self.writing = watch
            if watch:
                self._loop.add_writer(self._target, self.move)
            else:
                self._loop.remove_writer(self._target)

    def _finish(self, exc: BaseException | None) -> None:
        self.stop()
        if not self.finished.done():
            if exc is None:
                self.finished.set_result(None)
            else:
                self.finished.set_exception(exc)

    def stop(self) -> None:
        self._watch_source(False)
        self._watch_target(False)


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
        if not self.remaining:  # what follows on the socket is not this stretch's
            self._transport.pause_reading()
        waited_for = self._waiter is not None and self._worth_it()
        if self._filled == len(self._buffer) or not self.remaining or waited_for:
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

    async def pieces(self) -> AsyncIterator[Piece]:
        while True:
            if not self._ready and self._worth_it():
                self._hand_on()  # the consumer is ready before the buffer is full: take what is there
            if self._ready:
                piece = self._ready.popleft()
                self._queued -= len(piece)
                if self._paused and self._queued <= self._buffer_size and self.remaining:
                    self._paused = False
                    self._transport.resume_reading()
                yield piece
            elif self._error is not None:
                raise self._error
            elif not self.remaining:
                return
            else:
                waiting_for = self.remaining
                self._waiter = asyncio.get_running_loop().create_future()
                try:
                    async with asyncio.timeout(self._stall):
                        await self._waiter
                except TimeoutError:
                    if self.remaining == waiting_for:
                        raise
                    self._hand_on()  # a slow store, not a stalled one: take the little that came
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
