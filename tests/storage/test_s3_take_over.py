"""Large S3 reads taken over from aiohttp (storage/blobs/s3_body.py) on pooled connections.

A small read leaves its connection in aiohttp's pool as soon as the whole body is buffered,
while its consumer (a client of the gateway) is still reading that buffer; each of those reads
asks the connection to resume reading. If the pool handed the connection to a large read that
was taken over meanwhile, aiohttp read that read's bytes into its own buffer instead of leaving
them on the socket: the body came out short after a false stall (issue 16 A).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ocigate.storage.blobs import SocketStretch, s3_requests
from ocigate.storage.blobs import s3 as s3_module
from ocigate.storage.blobs.s3 import S3BlobDriver
from ocigate.storage.config import MIB
from ocigate.storage.errors import StorageUnavailable
from tests.services.ceph import S3Service
from tests.stalling_proxy import StallingProxy
from tests.storage.reading import read_all
from tests.storage.test_s3_driver import pieces

SMALL = 3 * MIB // 2  # buffered whole by aiohttp (its high water mark for S3 reads is 2 MiB)
LARGE = 24 * MIB  # taken over, and more than sockets and pipes hold in flight


async def store(driver: S3BlobDriver, content: bytes, name: str) -> str:
    upload_id = name * 32
    state = await driver.start_upload(upload_id)
    state = await driver.write_upload(upload_id, state, 0, pieces(content, MIB))
    return await driver.commit_upload(upload_id, state, len(content), f"sha256/00/{name}")


@pytest.mark.parametrize("consumer", ["iterate", "splice"])
async def test_a_taken_over_connection_is_not_read_by_an_earlier_reader_of_it(
    ceph_s3: S3Service, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, consumer: str
) -> None:
    # one connection in the pool: the large read gets the one the small read gave back
    driver = await ceph_s3.open_driver(monkeypatch, "aws:kms", tmp_path, s3_pool_size=1, s3_timeout=2.0)
    assert LARGE >= s3_module.TAKE_OVER_MIN > SMALL
    small, large = os.urandom(SMALL), os.urandom(LARGE)
    try:
        small_at, large_at = await store(driver, small, "a"), await store(driver, large, "b")
        reading_small = driver.read(small_at, 0, SMALL)
        got_small = bytearray(await anext(reading_small))  # the rest arrives, the connection goes back
        reading_large = driver.read(large_at, 0, LARGE)  # ... and is taken over here
        got_large = bytearray()
        async for chunk in reading_large:
            if not isinstance(chunk, SocketStretch):
                got_large += chunk
                continue
            # the small read's client catches up: every read of aiohttp's buffer resumes the
            # connection it came from
            async for piece in reading_small:
                got_small += piece
            await asyncio.sleep(0.2)  # time for anything resumed to read from the socket
            if consumer == "iterate":
                async for piece in chunk:
                    got_large += piece
            else:
                got_large += await spliced(chunk)
        assert bytes(got_small) == small
        assert len(got_large) == LARGE
        assert bytes(got_large) == large
    finally:
        # bounded: before the fix, aiohttp waited forever for the connection it had lost
        await asyncio.wait_for(driver.close(), 30)


async def spliced(stretch: SocketStretch) -> bytes:
    """What a plain TCP client of the gateway receives when `stretch` is spliced to it."""
    loop = asyncio.get_running_loop()
    with socket.create_server(("127.0.0.1", 0)) as server:
        sender = socket.create_connection(server.getsockname())
        receiver, _ = server.accept()
    with sender, receiver:
        sender.setblocking(False)
        receiver.setblocking(False)
        received = bytearray()

        async def receive() -> None:
            while data := await loop.sock_recv(receiver, MIB):
                received.extend(data)

        receiving = asyncio.create_task(receive())
        try:
            assert await stretch.splice_to(sender.fileno())
            sender.shutdown(socket.SHUT_WR)
            await receiving
        finally:
            receiving.cancel()
    return bytes(received)


async def test_bodies_that_stall_fail_alone_and_do_not_open_the_breaker(
    moto_s3: S3Service, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A body that stops mid-way fails its read (503 or a cut connection) but says nothing of
    requests to come: neither one nor several of them open the circuit breaker."""
    proxy = await StallingProxy("127.0.0.1", int(moto_s3.endpoint_url.rsplit(":", 1)[1])).start()
    service = dataclasses.replace(moto_s3, endpoint_url=proxy.url)
    driver = await service.open_driver(monkeypatch, "none", tmp_path, s3_timeout=0.5)
    content = os.urandom(LARGE)
    try:
        location = await store(driver, content, "c")
        readers = [driver.read(location, 0, LARGE) for _ in range(s3_requests.BREAKER_FAILURES + 1)]
        stretches = [await stretch_of(reader) for reader in readers]
        proxy.stall()
        for stretch in stretches:
            with pytest.raises(StorageUnavailable, match="TimeoutError"):
                # the guard only stops a hang from stalling the suite; the timeout is 0.5 s
                await asyncio.wait_for(drain(stretch), 60)
        for reader in readers:
            await reader.aclose()
        proxy.resume()
        assert await read_all(driver, location, 0, LARGE) == content  # no "requests paused"
    finally:
        await driver.close()
        await proxy.close()


async def drain(stretch: SocketStretch) -> None:
    async for _ in stretch:
        pass


async def stretch_of(reader: AsyncIterator[bytes | SocketStretch]) -> SocketStretch:
    """The part of a read left on the store's connection (after what came with the headers)."""
    async for chunk in reader:
        if isinstance(chunk, SocketStretch):
            return chunk
    raise AssertionError("the read was not taken over")
