"""Blob files kept mapped between reads (storage/blobs/mapped.py), on real files."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from ocigate.storage.blobs.filesystem import FilesystemBlobDriver
from ocigate.storage.blobs.mapped import MappedBlob, MappedBlobs
from ocigate.storage.crypto import CHUNK_SIZE, BlobIntegrityError
from tests.storage.reading import read_all
from tests.storage.test_encryption import KEY, store


@pytest.fixture
def driver(tmp_path: Path) -> FilesystemBlobDriver:
    return FilesystemBlobDriver(tmp_path / "data", KEY)


class CountingOpener:
    """The driver's own opener, counting the files it maps."""

    def __init__(self, driver: FilesystemBlobDriver) -> None:
        self.driver = driver
        self.opened: list[MappedBlob] = []

    def __call__(self, location: str) -> MappedBlob:
        blob = self.driver._open_blob(location)
        self.opened.append(blob)
        return blob


async def test_reads_of_a_blob_share_one_mapping_until_it_is_idle(driver: FilesystemBlobDriver) -> None:
    location = await store(driver, os.urandom(3 * CHUNK_SIZE), "1", [])
    opener = CountingOpener(driver)
    blobs = MappedBlobs(opener, idle=3600)
    first = await blobs.acquire(location)
    blobs.release(first)
    second = await blobs.acquire(location)
    assert second is first
    assert len(opener.opened) == 1
    blobs.release(second)
    assert not first.mapping.closed  # idle for less than an hour

    expiring = MappedBlobs(opener, idle=0)
    blob = await expiring.acquire(location)
    expiring.release(blob)
    assert blob.mapping.closed
    assert (await expiring.acquire(location)) is not blob
    assert len(opener.opened) == 3


async def test_an_idle_mapping_is_closed_by_a_timer_without_further_reads(
    driver: FilesystemBlobDriver,
) -> None:
    location = await store(driver, b"layer", "2", [])
    blobs = MappedBlobs(CountingOpener(driver), idle=0.05)
    blob = await blobs.acquire(location)
    blobs.release(blob)
    for _ in range(100):  # a deadline for the timer, not a timing claim
        if blob.mapping.closed:
            break
        await asyncio.sleep(0.05)
    assert blob.mapping.closed


async def test_over_the_limit_the_least_recently_used_idle_mapping_goes(driver: FilesystemBlobDriver) -> None:
    locations = [await store(driver, os.urandom(CHUNK_SIZE), name, []) for name in "345"]
    opener = CountingOpener(driver)
    one = len(driver._open_blob(locations[0]).mapping)
    blobs = MappedBlobs(opener, idle=3600, limit=2 * one)
    oldest, middle = await blobs.acquire(locations[0]), await blobs.acquire(locations[1])
    blobs.release(oldest)
    blobs.release(middle)
    newest = await blobs.acquire(locations[2])  # three mapped: only when it is released do others go
    assert not oldest.mapping.closed
    blobs.release(newest)
    assert oldest.mapping.closed
    assert not middle.mapping.closed
    assert not newest.mapping.closed

    in_use = await blobs.acquire(locations[0])  # a mapping in use is never closed, whatever the limit
    blobs._limit = 0
    blobs.release(await blobs.acquire(locations[1]))
    assert not in_use.mapping.closed
    assert middle.mapping.closed
    blobs.release(in_use)
    assert in_use.mapping.closed


async def test_concurrent_first_reads_end_with_one_mapping(driver: FilesystemBlobDriver) -> None:
    location = await store(driver, os.urandom(CHUNK_SIZE + 1), "6", [])
    opener = CountingOpener(driver)
    blobs = MappedBlobs(opener, idle=3600)
    got = await asyncio.gather(*(blobs.acquire(location) for _ in range(4)))
    assert all(blob is got[0] for blob in got)
    assert got[0].users == 4
    spare = [blob for blob in opener.opened if blob is not got[0]]
    assert all(blob.mapping.closed for blob in spare)  # mapped by a loser of the race, closed
    assert not got[0].mapping.closed


async def test_a_blob_deleted_mid_read_finishes_that_read_and_is_gone_after(
    driver: FilesystemBlobDriver,
) -> None:
    content = os.urandom(40 * CHUNK_SIZE + 3)
    location = await store(driver, content, "7", [])
    assert await read_all(driver, location, 0, len(content)) == content  # now kept mapped
    reading = driver.read(location, 0, len(content))
    parts = [bytes(await anext(reading))]
    await driver.delete(location)
    parts.extend([bytes(chunk) async for chunk in reading])
    assert b"".join(parts) == content
    with pytest.raises(FileNotFoundError):
        await read_all(driver, location, 0, 1)
    assert driver._mapped._blobs == {}  # nothing keeps the deleted file's inode alive


async def test_over_the_most_files_the_least_recently_used_idle_mapping_goes(
    driver: FilesystemBlobDriver,
) -> None:
    locations = [await store(driver, b"small layer", name, []) for name in "89a"]
    blobs = MappedBlobs(CountingOpener(driver), idle=3600, most=2)
    mapped = []
    for location in locations:
        mapped.append(await blobs.acquire(location))
        blobs.release(mapped[-1])
    assert [blob.mapping.closed for blob in mapped] == [True, False, False]


async def test_a_kept_blob_file_cut_short_fails_its_checks_instead_of_faulting(
    driver: FilesystemBlobDriver,
) -> None:
    content = os.urandom(3 * CHUNK_SIZE)
    location = await store(driver, content, "b", [])
    assert await read_all(driver, location, 0, len(content)) == content  # now kept mapped
    path = driver._blob_path(location)
    os.truncate(path, path.stat().st_size - CHUNK_SIZE)
    with pytest.raises(BlobIntegrityError):
        await read_all(driver, location, 0, len(content))
