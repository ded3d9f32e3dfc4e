"""A TCP proxy that can stall: a store whose process hangs keeps its connections open and its
port accepting, but never answers. Refused connections are the easy failure; this is the hard one.

It also counts the bytes the store sent through it (`received`), and can hold them back and let
them go on (`stall`, then `release`): a test can have requests gather before the store answers.
`ThreadedProxy` runs one on a loop of its own, for tests whose own code blocks."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class StallingProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0
        self.received = 0  # bytes from the store to its clients

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> StallingProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stall(self) -> None:
        """From now on, bytes are held in both directions, on open and new connections."""
        self._flowing.clear()

    def release(self) -> None:
        """Bytes held by a stall go on, on the same connections."""
        self._flowing.set()

    def resume(self) -> None:
        """The store is back, as after a restart: connections of the stall are reset and what
        they held is dropped, new connections flow."""
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()
        self._flowing.set()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        self._writers.update((writer, upstream_writer))
        pipes = [
            asyncio.create_task(self._pipe(reader, upstream_writer)),
            asyncio.create_task(self._pipe(upstream_reader, writer, count=True)),
        ]
        self._tasks.update(pipes)
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pipes:
                task.cancel()
                self._tasks.discard(task)
            for stream in (writer, upstream_writer):
                self._writers.discard(stream)
                stream.close()

    async def _pipe(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, count: bool = False
    ) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await source.read(65536):
                await self._flowing.wait()
                if sink.is_closing():
                    return
                if count:
                    self.received += len(data)
                sink.write(data)
                await sink.drain()


class ThreadedProxy:
    """A StallingProxy on an event loop in a thread of its own: `with ThreadedProxy(host, port)
    as proxy`, then `proxy.call(proxy.proxy.stall)` and so on."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._target = (target_host, target_port)
        self.proxy: StallingProxy

    def __enter__(self) -> ThreadedProxy:
        self._thread.start()
        self.proxy = self._run(StallingProxy(*self._target).start())
        return self

    def __exit__(self, *exc: object) -> None:
        self._run(self.proxy.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def call(self, function: Callable[[], T]) -> T:
        async def run() -> T:
            return function()

        return self._run(run())

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(60)
