"""Reads of a blob in a remote store (Ceph RGW, SSE-KMS) shared by concurrent readers
(storage/blobs/fanout.py, flight.py, reads.py). Counts, not timings: the store's reads and bytes
as the reads' own counters give them, and the bytes every reader received. The edge cache's
part: test_edge_cache_reads.py."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
from pathlib import Path

import pytest

from ocigate.storage.blobs.base import SocketStretch
from ocigate.storage.blobs.edge_cache import EdgeCache
from ocigate.storage.blobs.flight_splice import SLICE
from ocigate.storage.blobs.reads import BlobReads
from ocigate.storage.blobs.s3 import S3BlobDriver
from ocigate.storage.config import MIB
from ocigate.storage.errors import StorageUnavailable
from tests.services.ceph import S3Service
from tests.stalling_proxy import StallingProxy
from tests.storage.shared_reads import (
    SIZE,
    Blob,
    content,
    edge_cache,
    entries,
    read,
    settled,
    slow_reader,
    store,
)


async def test_concurrent_cold_reads_share_one_store_read(driver: S3BlobDriver, blob: Blob) -> None:
    reads = BlobReads(driver)
    assert reads.fanout is not None
    got = await asyncio.wait_for(asyncio.gather(*(read(reads, blob) for _ in range(16))), 120)
    assert all(data == blob.content for data in got)
    assert reads.fanout.counters.flights == 1
    assert reads.fanout.counters.store_bytes == blob.size
    assert reads.fanout.counters.joined == 15


async def test_overlapping_ranges_share_the_read(driver: S3BlobDriver, blob: Blob) -> None:
    reads = BlobReads(driver)
    assert reads.fanout is not None
    ranges = [(0, blob.size), (MIB, 3 * MIB), (0, 1), (5 * MIB + 7, 6 * MIB)]
    got = await asyncio.wait_for(asyncio.gather(*(read(reads, blob, *r) for r in ranges)), 120)
    assert got == [blob.content[start:end] for start, end in ranges]
    assert reads.fanout.counters.flights == 1
    assert reads.fanout.counters.store_bytes == blob.size


@pytest.mark.parametrize(
    "kind", ["spill", "with-edge-cache", "detached"], ids=["alone", "with-edge-cache", "no-spill"]
)
async def test_a_slow_reader_holds_back_nobody(
    driver: S3BlobDriver, blob: Blob, tmp_path: Path, kind: str
) -> None:
    """The slow reader takes one piece and stops; the others read every byte meanwhile (the
    window is 8 MiB of a 24 MiB blob). The slow one then gets the rest: from the cache file it
    was moved to, from the flight's spill file, or (spills off) from a read of its own."""
    reads = BlobReads(driver, edge_cache(tmp_path) if kind == "with-edge-cache" else None, window=8 * MIB)
    assert reads.fanout is not None
    reads.fanout.spill = kind != "detached"
    slow = reads.read(blob.location, blob.digest, blob.size, 0, blob.size)
    stopped = asyncio.Event()

    async def slow_reader() -> bytes:
        first = await content(await anext(slow))
        await stopped.wait()
        return first + b"".join([await content(chunk) async for chunk in slow])

    slow_task = asyncio.create_task(slow_reader())
    fast = await asyncio.wait_for(asyncio.gather(*(read(reads, blob) for _ in range(4))), 120)
    assert fast == [blob.content] * 4
    assert not slow_task.done()
    stopped.set()
    assert await asyncio.wait_for(slow_task, 120) == blob.content
    counters = reads.fanout.counters
    if kind == "detached":
        assert (counters.flights, counters.spooled, counters.detached) == (2, 0, 1)
        assert blob.size < counters.store_bytes < 2 * blob.size
    else:
        assert (counters.flights, counters.spooled, counters.detached) == (1, 1, 0)
        assert counters.spills == (kind == "spill")
        assert counters.store_bytes == blob.size


async def test_a_read_after_the_stores_read_ended_follows_what_a_reader_still_holds(
    driver: S3BlobDriver, blob: Blob
) -> None:
    """The store has sent the whole blob (it fits the window) while its first reader still
    streams it: a read coming now follows that flight from memory instead of reading the store
    again (in a storm, nodes keep coming after the store's read of a small layer is over)."""
    reads = BlobReads(driver, window=32 * MIB)
    assert reads.fanout is not None
    first = reads.read(blob.location, blob.digest, blob.size, 0, blob.size)
    head = await content(await anext(first))
    for _ in range(12_000):  # the store's read runs on while the first reader holds still
        if reads.fanout.counters.store_bytes == blob.size:
            break
        await asyncio.sleep(0.01)
    assert reads.fanout.counters.store_bytes == blob.size
    for _ in range(10):  # the read's task ends
        await asyncio.sleep(0)
    assert await asyncio.wait_for(read(reads, blob), 120) == blob.content
    assert head + b"".join([await content(chunk) async for chunk in first]) == blob.content
    counters = reads.fanout.counters
    assert (counters.flights, counters.joined, counters.store_bytes) == (1, 1, blob.size)
    assert reads.fanout.in_flight() == 0


async def test_a_read_from_the_start_after_the_window_moved_on_follows_the_spill(
    driver: S3BlobDriver, blob: Blob
) -> None:
    """Two readers, one stopping after a piece: the store's read spills from its first byte on
    (it is read by several) and runs to the end with the other. A third read from the first
    byte, long gone from the 4 MiB window, follows the spill instead of reading the store."""
    reads = BlobReads(driver, window=4 * MIB)
    assert reads.fanout is not None
    slow = reads.read(blob.location, blob.digest, blob.size, 0, blob.size)
    head = await content(await anext(slow))
    assert await asyncio.wait_for(read(reads, blob), 120) == blob.content
    assert reads.fanout.counters.store_bytes == blob.size
    assert await asyncio.wait_for(read(reads, blob), 120) == blob.content
    assert head + b"".join([await content(chunk) async for chunk in slow]) == blob.content
    counters = reads.fanout.counters
    assert (counters.flights, counters.spills, counters.store_bytes) == (1, 1, blob.size)
    assert reads.fanout.in_flight() == 0


@pytest.mark.parametrize("cached", [False, True], ids=["no-cache", "another-worker-fills"])
async def test_slow_readers_left_behind_share_one_store_read(
    driver: S3BlobDriver, blob: Blob, tmp_path: Path, cached: bool
) -> None:
    """Six readers stop after one piece while two read on: the window (4 MiB of 24) leaves the
    six behind. They read on from the flight's spill file, not each from the store: without an
    edge cache, and with one whose fill of this blob another process holds (a second worker),
    the store sends the blob once."""
    cache = edge_cache(tmp_path) if cached else None
    other = None
    if cache is not None:  # another process's fill: the flock is per open file, so this holds it
        other = await edge_cache(tmp_path).fill(
            EdgeCache.name(blob.location, blob.digest), blob.digest, blob.size
        )
        assert other is not None
    reads = BlobReads(driver, cache, window=4 * MIB)
    assert reads.fanout is not None
    stopped = asyncio.Event()

    try:
        slow = [asyncio.create_task(slow_reader(reads, blob, stopped)) for _ in range(6)]
        fast = await asyncio.wait_for(asyncio.gather(*(read(reads, blob) for _ in range(2))), 120)
        assert fast == [blob.content] * 2
        assert not any(task.done() for task in slow)
        stopped.set()
        assert await asyncio.wait_for(asyncio.gather(*slow), 120) == [blob.content] * 6
    finally:
        if other is not None:
            await other.finish(False)
            other.close()
    counters = reads.fanout.counters
    assert (counters.flights, counters.store_bytes) == (1, blob.size)
    assert (counters.spills, counters.spooled, counters.detached) == (1, 6, 0)
    assert cache is None or cache.counters.fills == 0
    await settled(reads)
    assert reads.fanout.spilling == 0  # the spill file closed, its reservation freed


async def test_spills_stay_within_their_byte_bound(driver: S3BlobDriver, blob: Blob) -> None:
    """A spill would hold the rest of its blob: with less than that left of `spill_bytes`, none
    is opened and readers left behind read the store on their own, whole (disk use is bounded)."""
    reads = BlobReads(driver, window=4 * MIB, spill_bytes=blob.size - 1)
    assert reads.fanout is not None
    stopped = asyncio.Event()

    slow = [asyncio.create_task(slow_reader(reads, blob, stopped)) for _ in range(2)]
    fast = await asyncio.wait_for(read(reads, blob), 120)
    assert fast == blob.content
    stopped.set()
    assert await asyncio.wait_for(asyncio.gather(*slow), 120) == [blob.content] * 2
    counters = reads.fanout.counters
    assert (counters.spills_refused, counters.detached) == (1, 2)
    # the two left behind share a second read of the store (its own spill fits: less is left)
    assert counters.flights == 2
    assert blob.size < counters.store_bytes < 2 * blob.size
    await settled(reads)
    assert reads.fanout.spilling == 0


async def test_the_first_reader_leaving_ends_nobody_elses_read(driver: S3BlobDriver, blob: Blob) -> None:
    reads = BlobReads(driver, window=2 * MIB)
    assert reads.fanout is not None
    first = reads.read(blob.location, blob.digest, blob.size, 0, blob.size)

    async def leave_early() -> int:
        piece = await anext(first)
        await first.aclose()  # the client went away
        return len(piece)  # type: ignore[arg-type]

    left, *others = await asyncio.wait_for(
        asyncio.gather(leave_early(), *(read(reads, blob) for _ in range(3))), 120
    )
    assert 0 < left < blob.size
    assert others == [blob.content] * 3
    assert reads.fanout.counters.flights == 1


async def test_a_lone_read_is_handed_the_stores_socket(driver: S3BlobDriver, blob: Blob) -> None:
    """A read nobody else follows gets the store's body on its socket, in slices, which the
    kernel moves to a socket of the consumer's (spliced), not one byte entering the process;
    all but the first window's bytes (kept in memory for reads that come soon after)."""
    reads = BlobReads(driver, window=4 * MIB)
    assert reads.fanout is not None
    client, peer = socket.socketpair()
    received = bytearray()

    def receive() -> None:
        while len(received) < blob.size and (data := peer.recv(1 << 20)):
            received.extend(data)

    receiving = asyncio.create_task(asyncio.to_thread(receive))
    client.setblocking(False)
    stretches = 0
    try:
        async for chunk in reads.read(blob.location, blob.digest, blob.size, 0, blob.size):
            if isinstance(chunk, SocketStretch):
                stretches += 1
                assert await chunk.splice_to(client.fileno())
            else:
                await asyncio.get_running_loop().sock_sendall(client, chunk)
        await asyncio.wait_for(receiving, 120)
    finally:
        client.close()
        peer.close()
    assert received == blob.content
    counters = reads.fanout.counters
    assert stretches == -(-counters.spliced // SLICE) > 1
    assert counters.spliced == blob.size - 4 * MIB
    assert counters.store_bytes == blob.size
    assert (counters.flights, counters.joined) == (1, 0)


async def test_a_read_coming_during_a_handoff_reads_what_went_by_then_follows(
    driver: S3BlobDriver, blob: Blob
) -> None:
    """The bytes handed to the lone reader are gone from the flight: a read from the first byte
    that comes meanwhile reads them on its own (at most a slice more from the store) and follows
    the flight from the slice's end; both get every byte. (The window holds the whole blob: the
    first reader, which does not wait for a client, never leaves the second behind.)"""
    reads = BlobReads(driver, window=2 * SIZE)
    assert reads.fanout is not None
    reads.fanout.hand_on_after = 2 * MIB
    counters = reads.fanout.counters
    first = reads.read(blob.location, blob.digest, blob.size, 0, blob.size)
    head = b""
    while not isinstance(chunk := await anext(first), SocketStretch):
        head += bytes(chunk)
    second = asyncio.create_task(read(reads, blob))
    for _ in range(1200):  # until it follows the flight (and reads the bytes before on its own)
        if counters.joined:
            break
        await asyncio.sleep(0.05)
    assert counters.joined == 1
    rest = b"".join([await content(chunk), *[await content(chunk) async for chunk in first]])
    assert head + rest == blob.content
    assert await asyncio.wait_for(second, 120) == blob.content
    assert counters.flights == 2
    assert blob.size < counters.store_bytes <= blob.size + len(head) + SLICE


async def test_a_lone_reader_letting_go_of_its_slice_leaves_the_others_whole(
    driver: S3BlobDriver, blob: Blob
) -> None:
    """A client gone mid-slice leaves the rest of the store's body out of reach: the read that
    was to follow goes on with a read of its own, and gets the exact bytes."""
    reads = BlobReads(driver)
    assert reads.fanout is not None
    counters = reads.fanout.counters
    first = reads.read(blob.location, blob.digest, blob.size, 0, blob.size)
    while not isinstance(await anext(first), SocketStretch):
        pass
    second = asyncio.create_task(read(reads, blob))
    for _ in range(1200):
        if counters.joined:
            break
        await asyncio.sleep(0.05)
    assert counters.joined == 1
    await first.aclose()  # the client went away with the slice unread
    assert await asyncio.wait_for(second, 120) == blob.content
    assert counters.flights == 3  # the first, the second's read of what went by, and of the rest


async def test_a_store_failing_mid_read_fails_every_reader(
    ceph_s3: S3Service, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Every follower gets an error of its own where the store's bytes stopped: none ends short
    and quiet."""
    proxy = await StallingProxy("127.0.0.1", int(ceph_s3.endpoint_url.rsplit(":", 1)[1])).start()
    service = dataclasses.replace(ceph_s3, endpoint_url=proxy.url)
    driver = await service.open_driver(monkeypatch, "aws:kms", tmp_path, s3_timeout=1.0)
    try:
        blob = await store(driver, os.urandom(48 * MIB))
        reads = BlobReads(driver, edge_cache(tmp_path), window=4 * MIB)
        readers = [reads.read(blob.location, blob.digest, blob.size, 0, blob.size) for _ in range(4)]
        received = [len(await anext(reader)) for reader in readers]  # type: ignore[arg-type]
        proxy.stall()

        async def rest(index: int) -> BaseException | None:
            try:
                async for piece in readers[index]:
                    received[index] += len(piece)  # type: ignore[arg-type]
            except StorageUnavailable as exc:
                return exc
            return None

        errors = await asyncio.wait_for(asyncio.gather(*(rest(i) for i in range(4))), 120)
        assert all(isinstance(error, StorageUnavailable) for error in errors)
        assert len({id(error) for error in errors}) == 4  # one each, not one shared
        assert all(count < blob.size for count in received)
        await settled(reads)  # the fill ends after its readers heard of the failure
        assert reads.cache is not None
        assert reads.cache.counters.fills == 0
        assert entries(tmp_path) == []  # nothing cached
        assert not list((tmp_path / "cache" / "uploads").iterdir())  # the fill was discarded
    finally:
        await driver.close()
        await proxy.close()


# --- lingering ----------------------------------------------------------------------------------


async def test_a_read_soon_after_a_small_blobs_read_ended_follows_it_from_memory(
    driver: S3BlobDriver, blob: Blob
) -> None:
    """A blob that fits the window stays in memory after its last reader left: a node asking for
    it a moment later is served without a read of the store. One larger than the window does not
    linger (its first bytes left memory as it streamed)."""
    small = await store(driver, os.urandom(3 * MIB + 5))
    reads = BlobReads(driver)
    fanout = reads.fanout
    assert fanout is not None
    assert await read(reads, small) == small.content
    await settled(reads)
    assert (fanout.lingering(), fanout.lingering_bytes) == (1, small.size)
    assert await read(reads, small) == small.content
    assert await read(reads, small, MIB, 2 * MIB) == small.content[MIB : 2 * MIB]  # ranges too
    assert (fanout.counters.flights, fanout.counters.store_bytes) == (1, small.size)
    assert fanout.counters.revived == 2
    assert await read(reads, blob) == blob.content
    await settled(reads)
    assert (fanout.lingering(), fanout.lingering_bytes) == (1, small.size)  # the small one only


async def test_lingering_flights_go_with_time_bytes_and_deletes(driver: S3BlobDriver) -> None:
    """Memory is bounded: the oldest lingering flight goes when another would pass `linger_bytes`;
    each goes `linger` seconds after its last reader; a deleted blob's goes at once."""
    blobs = [await store(driver, os.urandom(2 * MIB)) for _ in range(4)]
    reads = BlobReads(driver)
    fanout = reads.fanout
    assert fanout is not None
    fanout.linger_bytes = 5 * MIB  # room for two
    for small in blobs[:3]:
        assert await read(reads, small) == small.content
        await settled(reads)
    assert (fanout.lingering(), fanout.lingering_bytes) == (2, 4 * MIB)
    assert await read(reads, blobs[0]) == blobs[0].content  # went first: read again
    assert await read(reads, blobs[2]) == blobs[2].content  # still there
    assert (fanout.counters.flights, fanout.counters.revived) == (4, 1)

    await settled(reads)
    await reads.discard(blobs[2].location, blobs[2].digest)
    assert fanout.lingering() == 1
    assert await read(reads, blobs[2]) == blobs[2].content
    assert fanout.counters.flights == 5

    reads = BlobReads(driver)  # another process, whose flights linger a tenth of a second
    fanout = reads.fanout
    assert fanout is not None
    fanout.linger = 0.1
    assert await read(reads, blobs[3]) == blobs[3].content
    for _ in range(600):
        if not fanout.lingering():
            break
        await asyncio.sleep(0.05)
    assert (fanout.lingering(), fanout.lingering_bytes) == (0, 0)
    assert await read(reads, blobs[3]) == blobs[3].content
    assert fanout.counters.flights == 2
