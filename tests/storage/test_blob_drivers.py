"""The suite every blob driver passes (like CNCF Distribution's storage driver testsuites)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from ocigate.storage.blobs import BlobDriver
from tests.storage.reading import read_all


async def chunks_of(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


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


async def test_rewrite_from_earlier_offset_discards_the_rest(blob_driver: BlobDriver) -> None:
    """A failed request is retried from the last committed offset: what followed must go."""
    state = await blob_driver.start_upload("b" * 32)
    state = await blob_driver.write_upload("b" * 32, state, 0, chunks_of(b"0123456789"))
    state = await blob_driver.write_upload("b" * 32, state, 4, chunks_of(b"xy"))
    location = await blob_driver.commit_upload("b" * 32, state, 6, "sha256/cd/cdef")
    assert await read_all(blob_driver, location, 0, 6) == b"0123xy"


async def test_commit_with_wrong_size_fails(blob_driver: BlobDriver) -> None:
    state = await blob_driver.start_upload("c" * 32)
    state = await blob_driver.write_upload("c" * 32, state, 0, chunks_of(b"abc"))
    with pytest.raises(OSError, match="not 4 bytes"):
        await blob_driver.commit_upload("c" * 32, state, 4, "sha256/ef/ef01")


async def test_abort_and_delete_are_idempotent(blob_driver: BlobDriver) -> None:
    state = await blob_driver.start_upload("d" * 32)
    state = await blob_driver.write_upload("d" * 32, state, 0, chunks_of(b"data"))
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
