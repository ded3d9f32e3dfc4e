"""What the shared-read tests use (test_blob_reads.py, test_edge_cache_reads.py, tests/gc): a
blob in a remote store (Ceph RGW, SSE-KMS) and reads of it through BlobReads. The fixtures
`driver` and `blob` reach the tests through conftest.py."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ocigate.storage.blobs.base import Piece, SocketStretch
from ocigate.storage.blobs.edge_cache import EdgeCache
from ocigate.storage.blobs.reads import BlobReads
from ocigate.storage.blobs.s3 import S3BlobDriver
from ocigate.storage.config import MIB
from tests.services.ceph import S3Service
from tests.storage.test_s3_driver import pieces

SIZE = 24 * MIB + 12_345  # read through the take-over path (s3.TAKE_OVER_MIN), not a whole chunk


@dataclasses.dataclass
class Blob:
    location: str
    digest: str
    content: bytes

    @property
    def size(self) -> int:
        return len(self.content)


async def store(driver: S3BlobDriver, content: bytes) -> Blob:
    upload_id = os.urandom(16).hex()
    state = await driver.start_upload(upload_id)
    state = await driver.write_upload(upload_id, state, 0, pieces(content, MIB))
    location = await driver.commit_upload(upload_id, state, len(content), "unused")
    return Blob(location, "sha256:" + hashlib.sha256(content).hexdigest(), content)


@pytest.fixture
async def driver(
    ceph_s3: S3Service, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[S3BlobDriver]:
    driver = await ceph_s3.open_driver(monkeypatch, "aws:kms", tmp_path)
    yield driver
    await driver.close()


@pytest.fixture
async def blob(driver: S3BlobDriver) -> Blob:
    return await store(driver, os.urandom(SIZE))


def edge_cache(tmp_path: Path, max_bytes: int = 1 << 30) -> EdgeCache:
    return EdgeCache(tmp_path / "cache", max_bytes, os.urandom(32))


async def read(reads: BlobReads, blob: Blob, start: int = 0, end: int | None = None) -> bytes:
    end = blob.size if end is None else end
    return b"".join(
        [
            await content(chunk)
            async for chunk in reads.read(blob.location, blob.digest, blob.size, start, end)
        ]
    )


async def content(chunk: Piece | SocketStretch) -> bytes:
    """A chunk's bytes: a stretch still on the store's socket is received."""
    if isinstance(chunk, SocketStretch):
        return b"".join([bytes(piece) async for piece in chunk])
    return bytes(chunk)


def entries(tmp_path: Path) -> list[Path]:
    return sorted(path for path in (tmp_path / "cache" / "blobs").rglob("*") if path.is_file())


async def slow_reader(reads: BlobReads, blob: Blob, stopped: asyncio.Event) -> bytes:
    """The whole blob, read one piece, then the rest once `stopped` is set."""
    chunks = reads.read(blob.location, blob.digest, blob.size, 0, blob.size)
    first = await content(await anext(chunks))
    await stopped.wait()
    return first + b"".join([await content(chunk) async for chunk in chunks])


async def settled(reads: BlobReads) -> None:
    """Until no flight is left (the last fill committed or discarded)."""
    assert reads.fanout is not None
    for _ in range(600):
        if not reads.fanout.in_flight():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("a flight did not end in 30 s")
