"""What only the S3 driver has to get right: multipart layout across requests, all-or-nothing
state with tails in staging objects, sweeping, startup checks, SSE-C secrecy, 503 when down,
bounded memory. The contract every driver passes (ranges, concurrent reads, redirects, nothing
left behind) is in test_blob_drivers.py."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import itertools
import json
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from ocigate.storage.blobs import SocketStretch, open_blob_driver, s3_requests
from ocigate.storage.blobs import s3 as s3_module
from ocigate.storage.blobs.s3 import S3BlobDriver, S3StoreError
from ocigate.storage.blobs.s3_sse import customer_key
from ocigate.storage.config import MIB
from ocigate.storage.errors import BlobUploadInvalid, StorageUnavailable
from tests.servers import free_port
from tests.services.ceph import BACKENDS, MotoServer, S3Service, new_bucket, open_backend
from tests.stalling_proxy import StallingProxy
from tests.storage.reading import read_all

PART = 5 * MIB


@pytest.fixture(params=list(BACKENDS))
async def s3(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[S3BlobDriver]:
    driver = await open_backend(request, request.param, tmp_path)
    yield driver
    await driver.close()


async def pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def broken_after(data: bytes, size: int) -> AsyncIterator[bytes]:
    async for piece in pieces(data, size):
        yield piece
    raise ConnectionResetError("client went away")


async def leftovers(driver: S3BlobDriver, upload_id: str) -> tuple[list[str], list[str]]:
    """Object keys and multipart uploads the store holds for an upload."""
    client: Any = driver._s3.client
    bucket = driver._s3.name
    objects = await client.list_objects_v2(Bucket=bucket, Prefix=f"blobs/{upload_id}")
    uploads = await client.list_multipart_uploads(Bucket=bucket, Prefix=f"blobs/{upload_id}")
    return (
        sorted(item["Key"] for item in objects.get("Contents", ())),
        [item["UploadId"] for item in uploads.get("Uploads", ())],
    )


async def test_multipart_across_requests_and_parts(s3: S3BlobDriver) -> None:
    upload_id = "1" * 32
    content = os.urandom(3 * PART + 1_234_567)
    cuts = [0, 3_000_001, 2 * PART + 17, len(content)]  # requests end inside parts
    state = await s3.start_upload(upload_id)
    for start, end in itertools.pairwise(cuts):
        state = await s3.write_upload(upload_id, state, start, pieces(content[start:end], 777_777))
        text = orjson.dumps(state)
        assert len(text) < 1024  # UploadId, parts, tail key: never bytes
        assert json.loads(text) == state
    assert state["parts"]
    assert state["tail"]
    location = await s3.commit_upload(upload_id, state, len(content), "sha256/00/00")
    assert location == f"blobs/{upload_id}"
    assert await read_all(s3, location, 0, len(content)) == content
    for start, end in [(PART - 10, PART + 10), (0, 1), (len(content) - 5, len(content)), (3, 2 * PART + 99)]:
        assert await read_all(s3, location, start, end) == content[start:end]
    assert await leftovers(s3, upload_id) == ([location], [])  # tails swept, nothing copied


async def test_small_blob_is_one_object_committed_in_place(s3: S3BlobDriver) -> None:
    upload_id = "2" * 32
    state = await s3.write_upload(upload_id, await s3.start_upload(upload_id), 0, pieces(b"small", 2))
    assert state["mpu"] is None
    location = await s3.commit_upload(upload_id, state, 5, "sha256/00/01")
    assert location == state["tail"]  # where PutObject wrote it: no copy at commit
    assert await read_all(s3, location, 0, 5) == b"small"
    assert await leftovers(s3, upload_id) == ([location], [])


async def test_failed_request_leaves_previous_state_valid(s3: S3BlobDriver) -> None:
    upload_id = "3" * 32
    first, lost, second = os.urandom(3 * MIB), os.urandom(8 * MIB), os.urandom(8 * MIB + 3)
    state = await s3.write_upload(upload_id, await s3.start_upload(upload_id), 0, pieces(first, 65536))
    # the client goes away after a part and a half: parts were uploaded, the state is unchanged
    with pytest.raises(ConnectionResetError):
        await s3.write_upload(upload_id, state, len(first), broken_after(lost, 100_003))
    # the domain may also refuse a state the driver returned (size check, lost compare-and-set)
    await s3.write_upload(upload_id, state, len(first), pieces(lost, 1 << 20))
    state = await s3.write_upload(upload_id, state, len(first), pieces(second, 1 << 20))
    size = len(first) + len(second)
    location = await s3.commit_upload(upload_id, state, size, "sha256/00/02")
    assert await read_all(s3, location, 0, size) == first + second
    assert await leftovers(s3, upload_id) == ([location], [])


async def test_concurrent_writes_never_commit_the_other_requests_bytes(s3: S3BlobDriver) -> None:
    """Two replicas continue the same state; the domain keeps one result. Its commit must refuse
    rather than store the loser's bytes under the winner's digest."""
    upload_id = "4" * 32
    head, mine, theirs = os.urandom(PART + MIB), os.urandom(6 * MIB), os.urandom(6 * MIB)
    state = await s3.write_upload(upload_id, await s3.start_upload(upload_id), 0, pieces(head, MIB))
    assert state["mpu"]
    winner = await s3.write_upload(upload_id, state, len(head), pieces(mine, MIB))
    await s3.write_upload(upload_id, state, len(head), pieces(theirs, MIB))  # overwrites part 2
    with pytest.raises(BlobUploadInvalid):  # the store checks part ETags on completion
        await s3.commit_upload(upload_id, winner, len(head) + len(mine), "sha256/00/03")


async def test_abort_removes_tails_parts_and_stray_multipart_uploads(s3: S3BlobDriver) -> None:
    upload_id = "5" * 32
    state = await s3.start_upload(upload_id)
    with pytest.raises(ConnectionResetError):  # leaves a multipart upload the state never names
        await s3.write_upload(upload_id, state, 0, broken_after(os.urandom(6 * MIB), MIB))
    state = await s3.write_upload(upload_id, state, 0, pieces(os.urandom(7 * MIB), MIB))
    objects, uploads = await leftovers(s3, upload_id)
    assert objects
    assert len(uploads) == 2
    await s3.abort_upload(upload_id, state)
    await s3.abort_upload(upload_id, state)
    assert await leftovers(s3, upload_id) == ([], [])


async def test_empty_request_and_rewinds(s3: S3BlobDriver) -> None:
    upload_id = "6" * 32
    content = os.urandom(PART + 100)
    state = await s3.write_upload(upload_id, await s3.start_upload(upload_id), 0, pieces(content, MIB))
    assert await s3.write_upload(upload_id, state, len(content), pieces(b"", 1)) == state
    with pytest.raises(OSError, match="inside an uploaded part"):
        await s3.write_upload(upload_id, state, 10, pieces(b"x", 1))
    state = await s3.write_upload(upload_id, state, PART + 50, pieces(b"", 1))  # keep half the tail
    location = await s3.commit_upload(upload_id, state, PART + 50, "sha256/00/04")
    assert await read_all(s3, location, 0, PART + 50) == content[: PART + 50]


async def test_sse_c_key_is_never_logged_or_shown(
    ceph_s3: S3Service, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="botocore")
    caplog.set_level(logging.DEBUG, logger="aiobotocore")
    driver = await ceph_s3.open_driver(monkeypatch, "sse-c", tmp_path)
    try:
        upload_id = "9" * 32
        state = await driver.write_upload(
            upload_id, await driver.start_upload(upload_id), 0, pieces(b"x" * 100, 7)
        )
        location = await driver.commit_upload(upload_id, state, 100, "sha256/00/06")
        assert await read_all(driver, location, 0, 100) == b"x" * 100
        shown = caplog.text + repr(driver) + repr(driver._s3.sse) + json.dumps(state)
    finally:
        await driver.close()
    key = ceph_s3.sse_c_key
    assert "x-amz-server-side-encryption-customer-key:" in caplog.text.lower()  # it was logged...
    assert key not in shown  # ...with the key blanked out
    assert repr(base64.b64decode(key))[2:-1] not in shown


async def test_startup_refuses_what_cannot_work(
    moto_s3: S3Service, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in moto_s3.credentials().items():
        monkeypatch.setenv(name, value)
    secret = moto_s3.sse_c_key
    # moto accepts SSE-C headers and ignores them: the probe sees it and refuses
    with pytest.raises(S3StoreError, match="ignored server-side encryption") as refused:
        await open_blob_driver(moto_s3.config("sse-c", new_bucket(), tmp_path))
    assert secret not in str(refused.value)
    with pytest.raises(ValueError, match="base64 of 32 bytes") as bad_key:
        await open_blob_driver(moto_s3.config("sse-c", new_bucket(), tmp_path, s3_sse_c_key=secret[:-8]))
    assert secret[:-8] not in str(bad_key.value)
    with pytest.raises(ValueError, match="`redirect` cannot work with `sse`=sse-c"):
        await open_blob_driver(moto_s3.config("sse-c", new_bucket(), tmp_path, s3_redirect=True))
    with pytest.raises(ValueError, match=r"part_size\n.*must be between 5 MiB and 5 GiB"):
        await open_blob_driver(moto_s3.config("none", new_bucket(), tmp_path, s3_part_size=MIB))
    with pytest.raises(ValueError, match=r"s3\.sse\n.*'none', 'AES256', 'aws:kms' or 'sse-c'"):
        await open_blob_driver(moto_s3.config("aes", new_bucket(), tmp_path))
    started = time.monotonic()
    with pytest.raises(S3StoreError, match="unreachable"):
        await open_blob_driver(
            moto_s3.config("none", new_bucket(), tmp_path, s3_endpoint_url=f"http://127.0.0.1:{free_port()}")
        )
    assert time.monotonic() - started < 15


async def test_missing_bucket_is_created(
    moto_s3: S3Service, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in moto_s3.credentials().items():
        monkeypatch.setenv(name, value)
    bucket = new_bucket()
    driver = await open_blob_driver(moto_s3.config("AES256", bucket, tmp_path))
    try:
        assert isinstance(driver, S3BlobDriver)
        await driver._s3.client.head_bucket(Bucket=bucket)
    finally:
        await driver.close()


def test_sse_c_key_from_file(tmp_path: Path) -> None:
    key = os.urandom(32)
    (tmp_path / "raw").write_bytes(key)
    (tmp_path / "text").write_text(base64.b64encode(key).decode() + "\n")
    assert customer_key(None, tmp_path / "raw") == key
    assert customer_key(None, tmp_path / "text") == key
    (tmp_path / "short").write_text(base64.b64encode(key[:16]).decode())
    with pytest.raises(ValueError, match="32 bytes"):
        customer_key(None, tmp_path / "short")


async def test_store_down_is_a_quick_storage_unavailable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server = MotoServer()  # its own store: the session's one stays up
    try:
        driver = await server.service().open_driver(monkeypatch, "none", tmp_path)
    except BaseException:
        server.stop()
        raise
    try:
        upload_id = "a" * 32
        state = await driver.write_upload(
            upload_id, await driver.start_upload(upload_id), 0, pieces(b"abc", 3)
        )
        location = await driver.commit_upload(upload_id, state, 3, "sha256/00/07")
        server.stop()
        started = time.monotonic()
        with pytest.raises(StorageUnavailable) as down:
            await read_all(driver, location, 0, 3)
        with pytest.raises(StorageUnavailable):
            await driver.write_upload(upload_id, await driver.start_upload(upload_id), 0, pieces(b"abc", 3))
        assert down.value.status == 503
        assert time.monotonic() - started < 15  # retries back off, but briefly
    finally:
        server.stop()
        await driver.close()


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise LookupError(field)


def _reset_peak_rss() -> int:
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    return _status_kib("VmHWM")


async def test_memory_is_bounded_by_one_part(
    moto_s3: S3Service, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """40 MiB in 64 KiB chunks with 5 MiB parts: this process's peak RSS (the part buffers are
    mmaps, which tracemalloc would not see) grows by about one part, not by the blob (moto runs
    in another process, so only the driver's side is measured)."""
    driver = await moto_s3.open_driver(monkeypatch, "none", tmp_path)
    upload_id = "b" * 32
    chunk = os.urandom(65536)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(40 * 16):
            yield chunk

    try:
        state = await driver.start_upload(upload_id)
        before = _reset_peak_rss()
        state = await driver.write_upload(upload_id, state, 0, body())
        grown = (_status_kib("VmHWM") - before) * 1024
        assert grown < 2 * PART, f"peak RSS grew {grown / MIB:.1f} MiB"
        location = await driver.commit_upload(upload_id, state, 40 * MIB, "sha256/00/08")
        assert location == f"blobs/{upload_id}"
        assert await read_all(driver, location, 0, 40 * MIB) == chunk * (40 * 16)
    finally:
        await driver.close()


@contextlib.asynccontextmanager
async def stalling_store(
    moto_s3: S3Service, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[tuple[S3BlobDriver, StallingProxy, str]]:
    """A driver (read timeout 0.5 s) whose store is behind a proxy that can stop answering, and
    the location of a 3-byte blob ("abc") stored through it."""
    proxy = await StallingProxy("127.0.0.1", int(moto_s3.endpoint_url.rsplit(":", 1)[1])).start()
    service = dataclasses.replace(moto_s3, endpoint_url=proxy.url)
    driver = await service.open_driver(monkeypatch, "none", tmp_path, s3_timeout=0.5)
    try:
        upload_id = os.urandom(16).hex()
        state = await driver.start_upload(upload_id)
        state = await driver.write_upload(upload_id, state, 0, pieces(b"abc", 3))
        yield driver, proxy, await driver.commit_upload(upload_id, state, 3, "sha256/00/09")
    finally:
        await driver.close()
        await proxy.close()


async def test_hung_store_times_out_then_fails_fast(
    moto_s3: S3Service, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A store that accepts connections but never answers: each request gives up on the
    configured read timeout (after its retries) instead of hanging; after a few such failures the
    circuit breaker answers without asking the store, and the first request after the cooldown
    finds the store back."""
    monkeypatch.setattr(s3_requests, "BREAKER_COOLDOWN", 1.0)
    async with stalling_store(moto_s3, monkeypatch, tmp_path) as (driver, proxy, location):
        proxy.stall()
        for _ in range(s3_requests.BREAKER_FAILURES):
            with pytest.raises(StorageUnavailable, match="ReadTimeoutError"):
                # the guard only stops a hang from stalling the suite; the timeout is 0.5 s
                await asyncio.wait_for(read_all(driver, location, 0, 3), 60)
        upload_id = "c" * 32
        with pytest.raises(StorageUnavailable, match="paused"):  # the breaker's own answer
            await driver.write_upload(upload_id, await driver.start_upload(upload_id), 0, pieces(b"abc", 3))
        proxy.resume()
        await asyncio.sleep(1.1)
        assert await read_all(driver, location, 0, 3) == b"abc"


async def test_requests_given_up_do_not_keep_the_breaker_closed(
    moto_s3: S3Service, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A client that gives up on a hung store (its request cancelled) tells nothing of the store:
    the failures before and after it still add up to the breaker's threshold."""
    async with stalling_store(moto_s3, monkeypatch, tmp_path) as (driver, proxy, location):
        proxy.stall()
        for attempt in range(s3_requests.BREAKER_FAILURES):
            if attempt == 1:  # a client that goes away while its request waits on the store
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(read_all(driver, location, 0, 3), 0.1)
            with pytest.raises(StorageUnavailable, match="ReadTimeoutError"):
                await asyncio.wait_for(read_all(driver, location, 0, 3), 60)
        with pytest.raises(StorageUnavailable, match="paused"):  # the breaker's own answer
            await read_all(driver, location, 0, 3)


async def send_all(
    driver: S3BlobDriver, location: str, start: int, end: int, on_stretch: Callable[[], None] = lambda: None
) -> tuple[bytes, int]:
    """Bytes [start, end) as the gateway sends them to a client on plain TCP: socket stretches
    spliced onto a loopback connection, the rest written to it. Returns the bytes received at
    the other end and how many of them were spliced."""
    loop = asyncio.get_running_loop()
    with socket.create_server(("127.0.0.1", 0)) as server:
        sender = socket.create_connection(server.getsockname())
        receiver, _ = server.accept()
    received = bytearray()

    async def receive() -> None:
        while data := await loop.sock_recv(receiver, MIB):
            received.extend(data)

    spliced = 0
    with sender, receiver:
        sender.setblocking(False)
        receiver.setblocking(False)
        receiving = asyncio.create_task(receive())
        try:
            async for chunk in driver.read(location, start, end):
                if isinstance(chunk, SocketStretch):
                    on_stretch()
                    assert await chunk.splice_to(sender.fileno())
                    spliced += len(chunk)
                else:
                    await loop.sock_sendall(sender, chunk)
            sender.shutdown(socket.SHUT_WR)
            await receiving
        finally:
            receiving.cancel()
    return bytes(received), spliced


async def test_large_reads_leave_aiohttp_and_a_stalled_or_cut_body_is_unavailable(
    moto_s3: S3Service, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Reads from TAKE_OVER_MIN are taken from aiohttp once the headers are in (s3_body.py):
    iterated or spliced onto a socket they give the blob's bytes, and a body the store stops
    sending or cuts off is StorageUnavailable (the gateway's 503 or cut connection), never a
    short or hung read."""
    taken: list[int] = []
    take_over = s3_module.take_over
    monkeypatch.setattr(s3_module, "take_over", lambda *args: taken.append(args[1]) or take_over(*args))
    proxy = await StallingProxy("127.0.0.1", int(moto_s3.endpoint_url.rsplit(":", 1)[1])).start()
    # written with the default timeout: moto may take longer than the readers' 0.5 s to assemble
    # 48 MiB on a busy machine, and a retried completion then fails
    writer = await moto_s3.open_driver(monkeypatch, "none", tmp_path)
    through_proxy = dataclasses.replace(moto_s3, endpoint_url=proxy.url)
    driver = await S3BlobDriver.open(
        through_proxy.config("none", writer._s3.name, tmp_path, s3_timeout=0.5).s3
    )
    content = os.urandom(48 * MIB)  # well beyond what the sockets and the proxy hold in flight
    small = s3_module.TAKE_OVER_MIN - 1
    try:
        upload_id = "d" * 32
        state = await writer.start_upload(upload_id)
        state = await writer.write_upload(upload_id, state, 0, pieces(content, MIB))
        location = await writer.commit_upload(upload_id, state, len(content), "sha256/00/0a")
        assert await read_all(driver, location, 0, len(content)) == content
        assert await read_all(driver, location, 7, 7 + small) == content[7 : 7 + small]
        assert await read_all(driver, location, 3, len(content) - 3) == content[3:-3]
        assert taken == [len(content), len(content) - 6]  # the read under TAKE_OVER_MIN was not
        received, spliced = await send_all(driver, location, 5, len(content) - 1)
        assert received == content[5:-1]
        assert spliced > len(content) - 2 * MIB  # all but what came with the headers

        for resume, cause in [(False, "TimeoutError"), (True, "ClientPayloadError")]:

            def stall(resume: bool = resume) -> None:
                proxy.stall()
                if resume:
                    proxy.resume()  # resets the stalled connections

            async def iterate(stall: Callable[[], None] = stall) -> None:
                async for chunk in driver.read(location, 0, len(content)):
                    if isinstance(chunk, SocketStretch):
                        stall()
                        async for _ in chunk:
                            pass

            for consumer in (iterate(), send_all(driver, location, 0, len(content), stall)):
                with pytest.raises(StorageUnavailable, match=cause):
                    # the guard only stops a hang from stalling the suite; the timeout is 0.5 s
                    await asyncio.wait_for(consumer, 60)
                proxy.resume()
        assert await read_all(driver, location, 0, len(content)) == content
    finally:
        await driver.close()
        await writer.close()
        await proxy.close()


@pytest.mark.parametrize("backend", ["s3-ceph-kms", "s3-moto"])
async def test_uploads_send_no_expect_100_continue(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Bodies go out with their headers: no `Expect: 100-continue` round trip (aiohttp's client
    also left an error unretrieved, logged with a traceback, when the store dropped a connection
    waiting for its 100 Continue)."""
    driver = await open_backend(request, backend, tmp_path)
    sent: list[tuple[str, str | None]] = []

    def capture(request: Any, **_: Any) -> None:
        sent.append((request.method, request.headers.get("Expect")))

    driver._s3.client.meta.events.register("before-send.s3", capture)
    try:
        upload_id = os.urandom(16).hex()
        state = await driver.start_upload(upload_id)
        state = await driver.write_upload(upload_id, state, 0, pieces(os.urandom(12 * MIB), MIB))
        await driver.commit_upload(upload_id, state, 12 * MIB, "unused")
    finally:
        await driver.close()
    assert any(method == "PUT" for method, _ in sent), sent
    assert [expect for _, expect in sent if expect is not None] == []
