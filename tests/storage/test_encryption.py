"""Filesystem blobs encrypted at rest: chunked AES-256-GCM, Range reads, tamper detection, keys."""

from __future__ import annotations

import base64
import itertools
import os
import random
import shutil
import stat
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

from ocigate.storage.blobs import filesystem
from ocigate.storage.blobs.filesystem import FilesystemBlobDriver
from ocigate.storage.crypto import (
    CHUNK_SIZE,
    HEADER_SIZE,
    RECORD_SIZE,
    BlobIntegrityError,
    load_blob_key,
    record_offset,
    stored_size,
)
from tests.registry_client import RegistryClient
from tests.servers import Gateway
from tests.storage.reading import read_all

C = CHUNK_SIZE
KEY = bytes(range(32))


async def chunks_of(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def store(driver: FilesystemBlobDriver, content: bytes, name: str, cuts: list[int]) -> str:
    """Upload `content` in one request per [cut, next cut), each split in odd pieces."""
    upload_id = name * 32
    state = await driver.start_upload(upload_id)
    bounds = [0, *cuts, len(content)]
    for start, end in itertools.pairwise(bounds):
        piece = content[start:end]
        small, half = min(7, len(piece)), max(7, len(piece) // 2)
        parts = chunks_of(piece[:small], piece[small:half], piece[half:])
        state = await driver.write_upload(upload_id, state, start, parts)
    return await driver.commit_upload(upload_id, state, len(content), f"sha256/{name * 2}/{name * 64}")


@pytest.fixture
def driver(tmp_path: Path) -> FilesystemBlobDriver:
    return FilesystemBlobDriver(tmp_path / "data", KEY)


def blob_file(driver: FilesystemBlobDriver, location: str) -> Path:
    return driver._blob_path(location)


# round trips ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cuts",
    [
        [],
        [1],
        [C - 1, C, C + 1],
        [5, 2 * C - 3, 2 * C + 17, 40 * C + 1],
        sorted(random.Random(7).sample(range(1, 50 * C), 9)),
    ],
)
async def test_round_trip_with_odd_append_boundaries(driver: FilesystemBlobDriver, cuts: list[int]) -> None:
    content = os.urandom(50 * C + 123)
    location = await store(driver, content, "a", cuts)
    assert await read_all(driver, location, 0, len(content)) == content
    assert blob_file(driver, location).stat().st_size == stored_size(len(content))


@pytest.mark.parametrize("size", [0, 1, C - 1, C, C + 1, 3 * C])
async def test_sizes_around_chunk_edges(driver: FilesystemBlobDriver, size: int) -> None:
    content = os.urandom(size)
    location = await store(driver, content, "b", [size // 2] if size > 1 else [])
    assert await read_all(driver, location, 0, size) == content


async def test_upload_continues_in_another_process(tmp_path: Path) -> None:
    """Everything a later PATCH needs is in the staged file and the JSON state."""
    content = os.urandom(3 * C + 10)
    first = FilesystemBlobDriver(tmp_path, KEY)
    state = await first.start_upload("c" * 32)
    state = await first.write_upload("c" * 32, state, 0, chunks_of(content[: C + 5]))
    second = FilesystemBlobDriver(tmp_path, KEY)
    state = orjson.loads(orjson.dumps(state))
    state = await second.write_upload("c" * 32, state, C + 5, chunks_of(content[C + 5 :]))
    location = await second.commit_upload("c" * 32, state, len(content), "sha256/cc/cc")
    assert await read_all(first, location, 0, len(content)) == content


async def test_failed_write_then_torn_tail_keeps_counted_bytes(driver: FilesystemBlobDriver) -> None:
    """A crash in the middle of re-encrypting the last chunk must not lose the bytes before it."""

    async def broken() -> AsyncIterator[bytes]:
        yield os.urandom(5 * C)  # more than a batch: chunk 0 is rewritten before the failure
        raise ConnectionResetError("client went away")

    content = os.urandom(C + 300)
    state = await driver.start_upload("d" * 32)
    state = await driver.write_upload("d" * 32, state, 0, chunks_of(content[:100]))
    with pytest.raises(ConnectionResetError):
        await driver.write_upload("d" * 32, state, 100, broken())
    staged = driver._upload_path("d" * 32)
    with staged.open("r+b") as file:  # as if killed while rewriting chunk 0
        file.seek(record_offset(0) + 20)
        file.write(b"torn")
    state = await driver.write_upload("d" * 32, state, 100, chunks_of(content[100:]))
    location = await driver.commit_upload("d" * 32, state, len(content), "sha256/dd/dd")
    assert await read_all(driver, location, 0, len(content)) == content
    assert not (staged.parent / f"{'d' * 32}.tail").exists()


# Range reads ----------------------------------------------------------------------------------


async def test_range_reads_at_chunk_edges(driver: FilesystemBlobDriver) -> None:
    content = os.urandom(40 * C + 100)
    location = await store(driver, content, "e", [C + 1])
    edges = [0, 1, C - 1, C, C + 1, 2 * C, 16 * C, 16 * C + 1, 32 * C - 1, 40 * C, 40 * C + 99]
    for start in edges:
        for end in [start, start + 1, start + C, start + C + 1, 2 * C, 17 * C + 3, len(content)]:
            if start <= end <= len(content):
                assert await read_all(driver, location, start, end) == content[start:end], (start, end)


async def test_range_read_decrypts_only_covering_chunks(driver: FilesystemBlobDriver) -> None:
    content = os.urandom(4 * C)
    location = await store(driver, content, "f", [])
    flip(blob_file(driver, location), record_offset(2) + 100)
    assert await read_all(driver, location, C - 10, 2 * C) == content[C - 10 : 2 * C]
    assert await read_all(driver, location, 3 * C, 4 * C) == content[3 * C :]
    with pytest.raises(BlobIntegrityError, match="chunk 2"):
        await read_all(driver, location, 2 * C + 5, 2 * C + 6)


async def test_reader_closed_early_releases_the_blob(driver: FilesystemBlobDriver) -> None:
    """A client that goes away mid-download: the batch read ahead is dropped quietly."""
    content = os.urandom(40 * C)
    location = await store(driver, content, "r", [])
    reader = driver.read(location, 0, len(content))
    first = await anext(reader)
    assert 0 < len(first) < len(content)
    assert first == content[: len(first)]
    await reader.aclose()
    await driver.delete(location)
    assert not blob_file(driver, location).exists()


async def test_read_past_the_end_fails(driver: FilesystemBlobDriver) -> None:
    location = await store(driver, b"short", "0", [])
    with pytest.raises(OSError, match="shorter than recorded"):
        await read_all(driver, location, 0, 6)


# tampering ------------------------------------------------------------------------------------


def flip(path: Path, offset: int) -> None:
    with path.open("r+b") as file:
        file.seek(offset)
        byte = file.read(1)
        file.seek(offset)
        file.write(bytes([byte[0] ^ 1]))


async def test_flipped_byte_fails_and_nothing_of_that_chunk_is_served(driver: FilesystemBlobDriver) -> None:
    content = os.urandom(40 * C)
    location = await store(driver, content, "1", [])
    flip(blob_file(driver, location), record_offset(20) + RECORD_SIZE // 2)
    served = bytearray()

    async def serve() -> None:
        async for chunk in driver.read(location, 0, len(content)):
            served.extend(chunk)

    with pytest.raises(BlobIntegrityError, match="chunk 20"):
        await serve()
    assert len(served) <= 20 * C  # the stream stops before the tampered chunk
    assert served == content[: len(served)]


@pytest.mark.parametrize("where", ["nonce", "ciphertext", "tag", "file id", "format"])
async def test_any_flipped_byte_fails(driver: FilesystemBlobDriver, where: str) -> None:
    content = os.urandom(2 * C + 7)
    location = await store(driver, content, "2", [])
    offset = {
        "nonce": record_offset(1) + 3,
        "ciphertext": record_offset(1) + 12 + 999,
        "tag": record_offset(2) - 1,
        "file id": 10,
        "format": 5,
    }[where]
    flip(blob_file(driver, location), offset)
    with pytest.raises(BlobIntegrityError):
        await read_all(driver, location, 0, len(content))


async def test_swapped_chunks_fail(driver: FilesystemBlobDriver) -> None:
    content = os.urandom(3 * C)
    location = await store(driver, content, "3", [])
    path = blob_file(driver, location)
    raw = bytearray(path.read_bytes())
    one, two = slice(record_offset(0), record_offset(1)), slice(record_offset(1), record_offset(2))
    raw[one], raw[two] = raw[two], raw[one]
    path.write_bytes(raw)
    with pytest.raises(BlobIntegrityError, match="chunk 0"):
        await read_all(driver, location, 0, C)


@pytest.mark.parametrize(
    "cut",
    [1, RECORD_SIZE - C // 2, RECORD_SIZE, RECORD_SIZE + 1, 2 * RECORD_SIZE + 5, 3 * RECORD_SIZE + 500],
)
async def test_truncated_file_fails_any_read(driver: FilesystemBlobDriver, cut: int) -> None:
    """Even a Range read of the intact start fails: the sealed length no longer matches."""
    content = os.urandom(3 * C + 500)
    location = await store(driver, content, "4", [])
    path = blob_file(driver, location)
    path.write_bytes(path.read_bytes()[:-cut])
    with pytest.raises(BlobIntegrityError):
        await read_all(driver, location, 0, 10)


async def test_extended_file_fails(driver: FilesystemBlobDriver) -> None:
    location = await store(driver, os.urandom(C), "5", [])
    path = blob_file(driver, location)
    path.write_bytes(path.read_bytes() + os.urandom(40))
    with pytest.raises(BlobIntegrityError):
        await read_all(driver, location, 0, 10)


async def test_files_swapped_between_blobs_fail(driver: FilesystemBlobDriver) -> None:
    first = await store(driver, os.urandom(C + 9), "6", [])
    second = await store(driver, os.urandom(C + 9), "7", [])
    a, b = blob_file(driver, first), blob_file(driver, second)
    a_bytes = a.read_bytes()
    a.write_bytes(b.read_bytes())
    b.write_bytes(a_bytes)
    for location in (first, second):
        with pytest.raises(BlobIntegrityError, match="header failed authentication"):
            await read_all(driver, location, 0, 1)


async def test_chunk_from_another_blob_fails(driver: FilesystemBlobDriver) -> None:
    first = await store(driver, os.urandom(2 * C), "8", [])
    second = await store(driver, os.urandom(2 * C), "9", [])
    a, b = blob_file(driver, first), blob_file(driver, second)
    raw = bytearray(a.read_bytes())
    raw[record_offset(1) :] = b.read_bytes()[record_offset(1) :]
    a.write_bytes(raw)
    with pytest.raises(BlobIntegrityError, match="chunk 1"):
        await read_all(driver, first, 0, 2 * C)


async def test_staged_file_cannot_pose_as_a_blob(driver: FilesystemBlobDriver) -> None:
    state = await driver.start_upload("s" * 32)
    await driver.write_upload("s" * 32, state, 0, chunks_of(b"not committed"))
    target = blob_file(driver, "sha256/ss/ss")
    target.parent.mkdir(parents=True)
    shutil.copy(driver._upload_path("s" * 32), target)
    with pytest.raises(BlobIntegrityError):
        await read_all(driver, "sha256/ss/ss", 0, 1)


async def test_wrong_key_fails(tmp_path: Path) -> None:
    location = await store(FilesystemBlobDriver(tmp_path, KEY), b"secret", "w", [])
    with pytest.raises(BlobIntegrityError):
        await read_all(FilesystemBlobDriver(tmp_path, os.urandom(32)), location, 0, 6)


async def test_plaintext_file_is_refused(driver: FilesystemBlobDriver) -> None:
    path = blob_file(driver, "sha256/pp/pp")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x" * (HEADER_SIZE + 100))
    with pytest.raises(BlobIntegrityError, match="not an encrypted ocigate blob"):
        await read_all(driver, "sha256/pp/pp", 0, 1)


# keys -----------------------------------------------------------------------------------------


def test_key_file_is_generated_0600_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "data" / "keys" / "blob.key"
    key = load_blob_key(None, None, path)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_blob_key(None, None, path) == key
    assert [p.name for p in path.parent.iterdir()] == ["blob.key"]  # no temp file left


def test_key_from_env_or_file_wins_over_generated(tmp_path: Path) -> None:
    key = os.urandom(32)
    text = base64.b64encode(key).decode()
    generated = tmp_path / "keys" / "blob.key"
    assert load_blob_key(text, None, generated) == key
    (tmp_path / "mounted.key").write_text(text + "\n")
    assert load_blob_key(None, tmp_path / "mounted.key", generated) == key
    assert not generated.exists()


@pytest.mark.parametrize("text", ["", "not base64!", base64.b64encode(b"k" * 16).decode()])
def test_bad_key_is_refused_without_echoing_it(tmp_path: Path, text: str) -> None:
    with pytest.raises(ValueError, match="base64 of 32 bytes") as error:
        load_blob_key(text, None, tmp_path / "blob.key")
    assert not text or text not in str(error.value)


def test_key_and_key_file_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not both"):
        load_blob_key(base64.b64encode(KEY).decode(), tmp_path / "k", tmp_path / "blob.key")


# through the real gateway ---------------------------------------------------------------------


def test_gateway_stores_no_plaintext_and_reuses_its_key(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    marker = b"OCIGATE-PLAINTEXT-MARKER-" + os.urandom(8).hex().encode()
    layer = os.urandom(C - 10) + marker + os.urandom(3 * C)  # the marker straddles a chunk edge
    server = Gateway(data_dir).start()
    try:
        digest = RegistryClient(server.url).push_blob("enc/proof", layer)
    finally:
        server.stop()
    key_file = data_dir / "keys" / "blob.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    for path in data_dir.rglob("*"):
        if path.is_file():
            assert marker not in path.read_bytes(), path

    key = key_file.read_bytes()
    server = Gateway(data_dir).start()  # restart: the same key still reads the blob
    try:
        client = RegistryClient(server.url)
        assert client.request("GET", f"/v2/enc/proof/blobs/{digest}").content == layer
        partial = client.request(
            "GET", f"/v2/enc/proof/blobs/{digest}", headers={"Range": f"bytes={C - 10}-{C + 40}"}
        )
        assert (partial.status_code, partial.content) == (206, layer[C - 10 : C + 41])
    finally:
        server.stop()
    assert key_file.read_bytes() == key


def test_gateway_never_serves_a_tampered_chunk(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    layer = bytes(20 * C) + b"\xfe" * C + b"\xfd" * (20 * C)
    server = Gateway(data_dir).start()
    try:
        client = RegistryClient(server.url)
        digest = client.push_blob("enc/tamper", layer)
        (path,) = (data_dir / "blobs").rglob(digest.split(":")[1] + ".*")
        flip(path, record_offset(20) + 500)
        body = b""
        try:
            # the status line is out before the bad chunk is met: the stream ends short or stalls
            get = client.request("GET", f"/v2/enc/tamper/blobs/{digest}", stream=True, timeout=5)
            with get as response:
                for part in response.iter_content(1 << 16):
                    body += part
        except requests.RequestException:
            pass
        assert len(body) < len(layer)
        assert b"\xfe" not in body  # nothing of the tampered chunk
        assert b"\xfd" not in body  # nor of anything after it
    finally:
        server.stop()


async def test_one_cpu_decrypts_cached_batches_on_the_loop(
    driver: FilesystemBlobDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With one CPU, batches already in the page cache are decrypted on the event loop's thread
    (a worker thread could not run in parallel); a batch that is not, and every batch with more
    CPUs, goes to the thread pool: the loop never waits on a disk."""
    content = os.urandom(3 * filesystem.BATCH_CHUNKS * C + 5)
    location = await store(driver, content, "9", [])
    threads: list[int] = []
    decrypt = filesystem._decrypt

    def recorded(*args: Any, **kwargs: Any) -> None:
        threads.append(threading.get_ident())
        decrypt(*args, **kwargs)

    monkeypatch.setattr(filesystem, "_decrypt", recorded)
    loop_thread = threading.get_ident()
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert await read_all(driver, location, 0, len(content)) == content
    assert threads == [loop_thread] * 4

    threads.clear()
    await driver.close()  # pages mapped by a process stay in the page cache: unmap them first
    fd = os.open(blob_file(driver, location), os.O_RDONLY)
    try:
        os.fsync(fd)  # clean pages can be dropped from the cache
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    assert await read_all(driver, location, 0, len(content)) == content
    assert threads[0] != loop_thread  # its madvise brings the rest in: later batches may be inline

    threads.clear()
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    assert await read_all(driver, location, 1, len(content)) == content[1:]
    assert len(threads) == 4
    assert loop_thread not in threads


@pytest.mark.parametrize("cpus", [{0}, {0, 1}])
async def test_a_batch_buffer_is_reused_only_once_the_consumer_let_go_of_it(
    driver: FilesystemBlobDriver, monkeypatch: pytest.MonkeyPatch, cpus: set[int]
) -> None:
    content = os.urandom(6 * filesystem.BATCH_CHUNKS * C)
    location = await store(driver, content, "8", [])
    fresh: list[int] = []
    uninitialized = filesystem.uninitialized
    monkeypatch.setattr(filesystem, "uninitialized", lambda size: fresh.append(size) or uninitialized(size))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: cpus)

    kept = [chunk async for chunk in driver.read(location, 0, len(content))]  # all held on to
    assert b"".join(kept) == content  # not one was written over
    assert len(fresh) == 6

    fresh.clear()
    copied = []
    async for chunk in driver.read(location, 0, len(content)):
        copied.append(bytes(chunk))
        del chunk  # as the blob handler does
    assert b"".join(copied) == content
    assert len(fresh) == len(cpus)  # one buffer, or two when the next batch is read ahead
