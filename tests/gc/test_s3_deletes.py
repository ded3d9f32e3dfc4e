"""The collector deletes blob bytes on S3 (Ceph RGW) in full `DeleteObjects` requests, 1000 keys
each, whatever its batch of rows: the rate of a collection's byte deletion is S3's rate per
request times the keys it carries (loadtests/bench/gc_p99.py measures it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocigate.storage.blobs.s3 import S3BlobDriver
from ocigate.storage.collector import BATCH, DELETE_BATCH
from ocigate.storage.metadata import MetadataStore
from ocigate.storage.metadata.sqlite import SqliteEngine
from tests.services.ceph import open_backend

from .world import open_world


async def test_a_sweep_deletes_the_bytes_of_more_than_a_batch_in_one_delete_objects(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    assert BATCH < DELETE_BATCH
    engine = await SqliteEngine.open(tmp_path / "metadata.db")
    await engine.migrate()
    metadata = MetadataStore.over(engine)
    driver = await open_backend(request, "s3-ceph-kms", tmp_path)
    assert isinstance(driver, S3BlobDriver)
    try:
        world = await open_world(metadata, driver)
        count = BATCH + 60  # more rows than one batch, fewer keys than one request
        for n in range(count):  # layers pushed without a manifest: unreferenced links
            await world.push_blob("bulk", f"blob {n}".encode())
        assert len(await world.stored_blobs()) == count
        before = driver.stats.requests[("DeleteObjects",)]

        report = await world.collect(grace=0)

        assert (report.links, report.blobs) == (count, count)
        assert driver.stats.requests[("DeleteObjects",)] - before == 1
        assert await world.stored_blobs() == []
    finally:
        await driver.close()
        await metadata.close()
