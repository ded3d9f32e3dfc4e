"""The edge cache as reads see it (storage/blobs/edge_cache.py, reads.py): blobs read from a
remote store (Ceph RGW, SSE-KMS) kept encrypted on the replica's disk, served again, evicted,
checked and discarded. Counts, not timings."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
from pathlib import Path

import pytest

from ocigate.storage.blobs.base import ReadChunks
from ocigate.storage.blobs.edge_cache import EdgeCache
from ocigate.storage.blobs.reads import BlobReads
from ocigate.storage.blobs.s3 import S3BlobDriver
from ocigate.storage.config import MIB
from tests.storage.shared_reads import Blob, edge_cache, entries, read, settled, store


async def test_a_filled_blob_is_served_from_the_cache_ranges_too(
    driver: S3BlobDriver, blob: Blob, tmp_path: Path
) -> None:
    reads = BlobReads(driver, edge_cache(tmp_path))
    assert reads.fanout is not None
    assert reads.cache is not None
    assert await read(reads, blob) == blob.content
    await settled(reads)
    assert reads.cache.counters.fills == 1
    for start, end in [(0, blob.size), (MIB - 3, 2 * MIB + 5), (blob.size - 1, blob.size)]:
        assert await read(reads, blob, start, end) == blob.content[start:end]
    assert reads.fanout.counters.flights == 1  # only the first read reached the store
    assert reads.cache.counters.hits == 3
    [stored] = entries(tmp_path)
    assert blob.content[:4096] not in stored.read_bytes()  # encrypted at rest


async def test_concurrent_hits_share_one_decryption(
    driver: S3BlobDriver, blob: Blob, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A warm storm: the reads that come together follow one read of the cache file (one
    decryption), as a cold storm's follow one read of the store; each is a hit of its own."""
    reads = BlobReads(driver, edge_cache(tmp_path))
    assert reads.fanout is not None
    assert reads.cache is not None
    assert await read(reads, blob) == blob.content
    await settled(reads)
    opened: list[tuple[int, int]] = []
    cache_read = reads.cache.read

    def counted(name: str, start: int, end: int) -> ReadChunks:
        opened.append((start, end))
        return cache_read(name, start, end)

    monkeypatch.setattr(reads.cache, "read", counted)
    assert await asyncio.gather(*(read(reads, blob) for _ in range(8))) == [blob.content] * 8
    assert opened == [(0, blob.size)]
    assert (reads.fanout.counters.cache_flights, reads.fanout.counters.joined) == (1, 7)
    assert reads.fanout.counters.flights == 1  # the store was read once, by the first read
    assert reads.fanout.counters.store_bytes == blob.size
    assert (reads.cache.counters.hits, reads.cache.counters.served_bytes) == (8, 8 * blob.size)


async def test_bytes_that_are_not_the_digest_are_never_cached(
    driver: S3BlobDriver, blob: Blob, tmp_path: Path
) -> None:
    reads = BlobReads(driver, edge_cache(tmp_path))
    assert reads.cache is not None
    wrong = dataclasses.replace(blob, digest="sha256:" + hashlib.sha256(b"other").hexdigest())
    assert await read(reads, wrong) == blob.content  # streamed as the store sent it (as ever)
    await settled(reads)
    assert reads.cache.counters.rejected == 1
    assert reads.cache.counters.fills == 0
    assert await read(reads, wrong) == blob.content
    assert reads.fanout is not None
    assert reads.fanout.counters.flights == 2  # not served from the cache


@pytest.mark.parametrize("damage", ["flipped-bit", "truncated"])
async def test_a_damaged_cache_file_is_discarded_and_the_store_read(
    driver: S3BlobDriver, blob: Blob, tmp_path: Path, damage: str
) -> None:
    key = os.urandom(32)
    reads = BlobReads(driver, EdgeCache(tmp_path / "cache", 1 << 30, key))
    assert await read(reads, blob) == blob.content
    await settled(reads)
    [path] = entries(tmp_path)
    data = bytearray(path.read_bytes())
    if damage == "flipped-bit":
        data[len(data) // 2] ^= 1
    else:
        del data[len(data) // 2 :]  # as a disk that lost the file's tail
    path.write_bytes(data)
    reads = BlobReads(driver, EdgeCache(tmp_path / "cache", 1 << 30, key))  # as after a restart
    assert await read(reads, blob) == blob.content
    assert reads.cache is not None
    assert reads.cache.counters.discarded == 1
    assert reads.fanout is not None
    assert reads.fanout.counters.flights == 1
    await settled(reads)
    if damage == "flipped-bit":
        assert reads.cache.counters.hits == 1  # served up to the broken chunk, then from the store
        assert reads.cache.counters.fills == 0  # a flight from the middle fills nothing
        assert entries(tmp_path) == []
    else:  # the sealed header names the length: refused before a byte is served
        assert reads.cache.counters.hits == 0
        assert reads.cache.counters.fills == 1  # read again from the store, and cached again
        [again] = entries(tmp_path)
        assert again.stat().st_size > len(data)
        assert await read(reads, blob) == blob.content
        assert reads.cache.counters.hits == 1
        assert reads.fanout.counters.flights == 1


async def test_least_recently_used_blobs_are_evicted_within_the_bound(
    driver: S3BlobDriver, tmp_path: Path
) -> None:
    blobs = [await store(driver, os.urandom(3 * MIB)) for _ in range(3)]
    # room for two entries (3 MiB and 12 chunk records' overhead each) but not three
    reads = BlobReads(driver, edge_cache(tmp_path, max_bytes=7 * MIB))
    assert reads.cache is not None
    assert reads.fanout is not None
    reads.fanout.linger = 0  # each read below goes to the cache, not to the last read's memory
    for blob in blobs[:2]:
        assert await read(reads, blob) == blob.content
        await settled(reads)
    assert await read(reads, blobs[0]) == blobs[0].content  # a hit: now the most recent
    assert reads.cache.counters.hits == 1
    assert await read(reads, blobs[2]) == blobs[2].content
    await settled(reads)
    assert reads.cache.counters.evicted == 1
    assert len(entries(tmp_path)) == 2
    assert sum(path.stat().st_size for path in entries(tmp_path)) <= 7 * MIB
    flights = reads.fanout.counters.flights
    assert await read(reads, blobs[0]) == blobs[0].content  # kept
    assert await read(reads, blobs[2]) == blobs[2].content  # kept
    assert reads.fanout.counters.flights == flights
    assert await read(reads, blobs[1]) == blobs[1].content  # evicted: from the store again
    assert reads.fanout.counters.flights == flights + 1


async def test_a_blob_larger_than_the_bound_is_not_cached(
    driver: S3BlobDriver, blob: Blob, tmp_path: Path
) -> None:
    reads = BlobReads(driver, edge_cache(tmp_path, max_bytes=blob.size - 1))
    assert await read(reads, blob) == blob.content
    await settled(reads)
    assert entries(tmp_path) == []
    assert reads.cache is not None
    assert reads.cache.counters.fills == 0


async def test_discard_removes_a_cached_blob_at_once(
    driver: S3BlobDriver, blob: Blob, tmp_path: Path
) -> None:
    reads = BlobReads(driver, edge_cache(tmp_path))
    assert await read(reads, blob) == blob.content
    await settled(reads)
    assert len(entries(tmp_path)) == 1
    await reads.discard(blob.location, blob.digest)
    assert entries(tmp_path) == []
    assert await read(reads, blob) == blob.content
    assert reads.fanout is not None
    assert reads.fanout.counters.flights == 2


async def test_a_new_location_of_a_digest_is_a_new_entry(
    driver: S3BlobDriver, blob: Blob, tmp_path: Path
) -> None:
    """A digest deleted and pushed again lives at a new location: the old entry is never found."""
    reads = BlobReads(driver, edge_cache(tmp_path))
    assert await read(reads, blob) == blob.content
    await settled(reads)
    again = await store(driver, blob.content)
    assert again.location != blob.location
    assert await read(reads, again) == blob.content
    assert reads.fanout is not None
    assert reads.fanout.counters.flights == 2
