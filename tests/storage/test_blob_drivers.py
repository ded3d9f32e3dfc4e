"""The contract every blob driver passes (like CNCF Distribution's storage driver testsuites):
filesystem, and S3 on Ceph (SSE-KMS, SSE-C) and on moto.

Each test deletes what it commits, and the fixture then checks that the store holds nothing
(`conftest.stored`): a staged file, tail object or open multipart upload left behind fails the
test. What only one driver has to get right is in its own file (test_s3_driver.py, …).
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import time
from collections.abc import AsyncIterator

import pytest
import requests

from ocigate.storage.blobs import BlobDriver
from ocigate.storage.blobs.filesystem import BATCH_CHUNKS
from ocigate.storage.blobs.s3 import READ_BUFFER, TAKE_OVER_MIN
from ocigate.storage.blobs.s3_parts import SEND_PIECE
from ocigate.storage.config import MIB
from ocigate.storage.crypto import CHUNK_SIZE
from tests.storage.reading import read_all

PART = 5 * MIB  # the S3 part size of the tests' drivers (tests/services/ceph.py)
# Where a driver's reads change pieces: the filesystem's cipher chunks and thread batches, S3's
# parts, receive buffer and send slices. Every one is a multiple of this step.
STEP = math.gcd(CHUNK_SIZE, BATCH_CHUNKS * CHUNK_SIZE, PART, READ_BUFFER, SEND_PIECE)
# three parts, the last one short, and longer than the reads S3 receives without aiohttp
SIZE = 2 * PART + 3 * CHUNK_SIZE + 17
assert SIZE > TAKE_OVER_MIN


async def chunks_of(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def commit(driver: BlobDriver, upload_id: str, content: bytes, piece: int = MIB) -> str:
    """`content` stored as a blob, sent in pieces of `piece` bytes; returns its location."""
    state = await driver.start_upload(upload_id)
    state = await driver.write_upload(upload_id, state, 0, pieces(content, piece))
    return await driver.commit_upload(upload_id, state, len(content), f"sha256/{upload_id[:2]}/{upload_id}")


def random_bytes(size: int) -> bytes:
    return random.Random(size).randbytes(size)  # seeded: a failure names the same bytes again


# uploads -------------------------------------------------------------------------------------


async def test_upload_in_pieces_then_commit_reads_back(blob_driver: BlobDriver) -> None:
    content = os.urandom(3 * 1024 * 1024 + 17)
    state = await blob_driver.start_upload("a" * 32)
    state = await blob_driver.write_upload("a" * 32, state, 0, chunks_of(content[:1000]))
    state = await blob_driver.write_upload(
        "a" * 32, state, 1000, chunks_of(content[1000:2_000_000], content[2_000_000:])
    )
    location = await blob_driver.commit_upload("a" * 32, state, len(content), "sha256/ab/abcd")
    assert await read_all(blob_driver, location, 0, len(content)) == content
    assert await read_all(blob_driver, location, 5, 1_500_000) == content[5:1_500_000]
    await blob_driver.delete(location)


async def test_rewrite_from_earlier_offset_discards_the_rest(blob_driver: BlobDriver) -> None:
    """A failed request is retried from the last committed offset: what followed must go."""
    state = await blob_driver.start_upload("b" * 32)
    state = await blob_driver.write_upload("b" * 32, state, 0, chunks_of(b"0123456789"))
    state = await blob_driver.write_upload("b" * 32, state, 4, chunks_of(b"xy"))
    location = await blob_driver.commit_upload("b" * 32, state, 6, "sha256/cd/cdef")
    assert await read_all(blob_driver, location, 0, 6) == b"0123xy"
    await blob_driver.delete(location)


async def test_an_empty_write_changes_nothing(blob_driver: BlobDriver) -> None:
    content = os.urandom(PART + 100)
    state = await blob_driver.start_upload("9" * 32)
    state = await blob_driver.write_upload("9" * 32, state, 0, pieces(content, MIB))
    state = await blob_driver.write_upload("9" * 32, state, len(content), chunks_of())
    state = await blob_driver.write_upload("9" * 32, state, len(content), chunks_of(b""))
    location = await blob_driver.commit_upload("9" * 32, state, len(content), "sha256/99/9999")
    assert await read_all(blob_driver, location, 0, len(content)) == content
    await blob_driver.delete(location)


async def test_commit_with_wrong_size_fails(blob_driver: BlobDriver) -> None:
    state = await blob_driver.start_upload("c" * 32)
    state = await blob_driver.write_upload("c" * 32, state, 0, chunks_of(b"abc"))
    with pytest.raises(OSError, match="not 4 bytes"):
        await blob_driver.commit_upload("c" * 32, state, 4, "sha256/ef/ef01")
    await blob_driver.abort_upload("c" * 32, state)  # the domain discards it: nothing stays


async def test_abort_and_delete_are_idempotent(blob_driver: BlobDriver) -> None:
    state = await blob_driver.start_upload("d" * 32)
    state = await blob_driver.write_upload("d" * 32, state, 0, pieces(os.urandom(PART + MIB), MIB))
    await blob_driver.abort_upload("d" * 32, state)
    await blob_driver.abort_upload("d" * 32, state)
    state = await blob_driver.start_upload("e" * 32)
    state = await blob_driver.write_upload("e" * 32, state, 0, chunks_of(b"data"))
    location = await blob_driver.commit_upload("e" * 32, state, 4, "sha256/12/1234")
    await blob_driver.delete(location)
    await blob_driver.delete(location)
    with pytest.raises(FileNotFoundError):
        await read_all(blob_driver, location, 0, 4)


async def test_empty_blob(blob_driver: BlobDriver) -> None:
    state = await blob_driver.start_upload("f" * 32)
    location = await blob_driver.commit_upload("f" * 32, state, 0, "sha256/e3/e3b0")
    assert await read_all(blob_driver, location, 0, 0) == b""
    await blob_driver.delete(location)


async def test_failed_write_leaves_previous_state_usable(blob_driver: BlobDriver) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"partial"
        raise ConnectionResetError("client went away")

    state = await blob_driver.start_upload("0" * 32)
    state = await blob_driver.write_upload("0" * 32, state, 0, chunks_of(b"good"))
    with pytest.raises(ConnectionResetError):
        await blob_driver.write_upload("0" * 32, state, 4, broken())
    state = await blob_driver.write_upload("0" * 32, state, 4, chunks_of(b"-more"))
    location = await blob_driver.commit_upload("0" * 32, state, 9, "sha256/00/0000")
    assert await read_all(blob_driver, location, 0, 9) == b"good-more"
    await blob_driver.delete(location)


async def test_orphaned_staging_is_reaped_and_nothing_else(
    blob_driver: BlobDriver, request: pytest.FixtureRequest
) -> None:
    """What a session that no longer exists staged goes; a live session's staging and committed
    blobs stay, whatever `orphaned` would say of them."""
    orphan, live = "1" * 32, "2" * 32
    content = os.urandom(PART + 10)  # a part and a tail on S3
    states = {}
    for upload_id in (orphan, live):
        state = await blob_driver.start_upload(upload_id)
        states[upload_id] = await blob_driver.write_upload(upload_id, state, 0, pieces(content, MIB))
    location = await commit(blob_driver, "3" * 32, b"committed")

    async def orphaned(upload_id: str) -> bool:
        return upload_id != live

    if request.node.callspec.params["blob_driver"] != "s3-moto":  # moto dates every upload 2010
        assert await blob_driver.reap_orphans(orphaned, before=time.time() - 3600) == 0  # too recent
    assert await blob_driver.reap_orphans(orphaned, before=time.time() + 60) == 1
    assert await read_all(blob_driver, location, 0, 9) == b"committed"
    live_location = await blob_driver.commit_upload(live, states[live], len(content), "sha256/22/2222")
    assert await read_all(blob_driver, live_location, 0, len(content)) == content
    for committed in (location, live_location):
        await blob_driver.delete(committed)
    # S3 reaps open multipart uploads only (a tail object looks like a small committed blob):
    # the orphan's tail goes as its session's own discard would take it
    await blob_driver.abort_upload(orphan, states[orphan])


# reads -------------------------------------------------------------------------------------


async def test_missing_blob_is_file_not_found(blob_driver: BlobDriver) -> None:
    location = await commit(blob_driver, "4" * 32, b"gone soon")
    await blob_driver.delete(location)
    for start, end in ((0, 9), (0, 0), (3, 3)):
        with pytest.raises(FileNotFoundError):
            await read_all(blob_driver, location, start, end)


async def test_range_edges(blob_driver: BlobDriver) -> None:
    content = random_bytes(SIZE)
    location = await commit(blob_driver, "5" * 32, content)
    ranges = [
        (0, 1),  # the first byte
        (SIZE - 1, SIZE),  # the last
        (0, SIZE),
        (1, SIZE - 1),
        (0, 0),  # empty, at either end and inside
        (SIZE, SIZE),
        (PART, PART),
        (SIZE - TAKE_OVER_MIN, SIZE),  # the shortest read S3 takes off aiohttp, to the end
        (7, 7 + TAKE_OVER_MIN - 1),  # the longest it leaves to aiohttp
    ]
    for start, end in ranges:
        assert await read_all(blob_driver, location, start, end) == content[start:end], (start, end)
    await blob_driver.delete(location)


async def test_reads_across_every_chunk_boundary(blob_driver: BlobDriver) -> None:
    content = random_bytes(SIZE)
    location = await commit(blob_driver, "6" * 32, content, piece=777_777)  # pieces straddle parts
    for boundary in range(STEP, SIZE, STEP):
        for start, end in ((boundary - 1, boundary), (boundary, boundary + 1), (boundary - 1, boundary + 1)):
            assert await read_all(blob_driver, location, start, end) == content[start:end], (start, end)
        assert await read_all(blob_driver, location, boundary, SIZE) == content[boundary:]
    await blob_driver.delete(location)


async def test_reading_past_the_end_fails(blob_driver: BlobDriver) -> None:
    """A size the metadata records but the store does not hold is an error, never fewer bytes
    presented as the whole range."""
    location = await commit(blob_driver, "7" * 32, b"0123456789")
    for start, end in ((0, 11), (5, 20)):
        with pytest.raises(OSError, match="shorter than recorded"):
            await read_all(blob_driver, location, start, end)
    await blob_driver.delete(location)


async def test_concurrent_reads_of_one_blob(blob_driver: BlobDriver) -> None:
    content = random_bytes(SIZE)
    location = await commit(blob_driver, "8" * 32, content)
    rng = random.Random(8)
    ranges = [(0, SIZE)] * 4 + [tuple(sorted(rng.sample(range(SIZE + 1), 2))) for _ in range(12)]
    read = await asyncio.gather(*(read_all(blob_driver, location, start, end) for start, end in ranges))
    assert [len(data) for data in read] == [end - start for start, end in ranges]
    assert all(data == content[start:end] for data, (start, end) in zip(read, ranges, strict=True))
    await blob_driver.delete(location)


# redirects ---------------------------------------------------------------------------------


async def test_blobs_are_streamed_unless_redirects_are_on(blob_driver: BlobDriver) -> None:
    location = await commit(blob_driver, "a" * 32, b"streamed")
    assert await blob_driver.redirect_url(location) is None
    await blob_driver.delete(location)


async def test_a_redirect_serves_exactly_the_blob(redirecting_driver: BlobDriver) -> None:
    """With redirects on (S3 without SSE-C), a blob GET is answered with a URL of the store
    that serves exactly the blob's bytes, ranges too, to a client holding no credentials."""
    content = random_bytes(SIZE)
    location = await commit(redirecting_driver, "b" * 32, content)
    other = await commit(redirecting_driver, "c" * 32, b"another blob")
    url = await redirecting_driver.redirect_url(location)
    assert url is not None
    assert url != await redirecting_driver.redirect_url(other)

    def get(headers: dict[str, str] | None = None) -> requests.Response:
        return requests.get(url, headers=headers, timeout=30)

    whole = await asyncio.to_thread(get)
    assert whole.status_code == 200
    assert int(whole.headers["Content-Length"]) == SIZE
    assert whole.content == content
    for first, last in ((0, 0), (SIZE - 1, SIZE - 1), (PART - 1, PART), (10, 19)):
        ranged = await asyncio.to_thread(get, {"Range": f"bytes={first}-{last}"})
        assert ranged.status_code == 206
        assert ranged.content == content[first : last + 1]
    for committed in (location, other):
        await redirecting_driver.delete(committed)
    assert (await asyncio.to_thread(get)).status_code == 404
