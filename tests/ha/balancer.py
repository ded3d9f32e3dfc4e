"""A small TCP load balancer for the rolling-restart test, as a cloud or HAProxy one behaves: it
checks each backend's `/readyz` every `interval` seconds and sends new connections, round robin,
only to backends that answered 200 last time; a connection stays with its backend for its life.
It runs on its own event loop in a thread."""

from __future__ import annotations

import asyncio
import itertools
import threading
from dataclasses import dataclass, field


@dataclass
class Backend:
    port: int
    ready: bool = False


@dataclass
class Balancer:
    backends: list[Backend]
    interval: float = 0.1
    port: int = 0
    connect_failures: int = 0  # a connection it could not pass to the backend it chose
    no_backend: int = 0  # connections that came while no backend was ready
    _loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    _thread: threading.Thread | None = None
    _stop: asyncio.Event | None = None
    _started: threading.Event = field(default_factory=threading.Event)
    _serving: set[asyncio.Task[None]] = field(default_factory=set)

    def start(self) -> Balancer:
        self._thread = threading.Thread(
            target=self._loop.run_until_complete, args=(self._run(),), daemon=True
        )
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("the balancer did not start")
        return self

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(30)
            if self._thread.is_alive():
                raise RuntimeError("the balancer did not stop")
        self._loop.close()

    async def _run(self) -> None:
        self._stop = asyncio.Event()
        choice = itertools.cycle(range(len(self.backends)))
        server = await asyncio.start_server(
            lambda r, w: self._serve(r, w, choice), "127.0.0.1", self.port, backlog=512
        )
        self.port = server.sockets[0].getsockname()[1]
        checks = [asyncio.create_task(self._check(backend)) for backend in self.backends]
        self._started.set()
        await self._stop.wait()
        server.close()
        for task in (*checks, *self._serving):
            task.cancel()
        await asyncio.gather(*checks, *self._serving, return_exceptions=True)

    async def _check(self, backend: Backend) -> None:
        while True:
            backend.ready = await _readyz(backend.port)
            await asyncio.sleep(self.interval)

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, choice: itertools.cycle[int]
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._serving.add(task)
        task.add_done_callback(self._serving.discard)
        backend = None
        for _ in self.backends:
            candidate = self.backends[next(choice)]
            if candidate.ready:
                backend = candidate
                break
        if backend is None:
            self.no_backend += 1
            writer.close()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", backend.port)
        except OSError:
            self.connect_failures += 1
            writer.close()
            return
        try:
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        finally:
            writer.close()
            upstream_writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except OSError:
        writer.transport.abort()


async def _readyz(port: int) -> bool:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 1)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(b"GET /readyz HTTP/1.1\r\nHost: balancer\r\nConnection: close\r\n\r\n")
        status_line = await asyncio.wait_for(reader.readline(), 2)
        return status_line.split(b" ")[1:2] == [b"200"]
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()
