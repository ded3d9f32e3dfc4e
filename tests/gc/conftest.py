"""The collector's tests run on both metadata engines (SQLite, PostgreSQL) and on the filesystem
store and S3 (Ceph RGW), with the fixtures of tests/storage."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ocigate.storage.blobs import BlobDriver
from tests.services.ceph import open_backend
from tests.storage.metadata_stores import metadata as metadata

from .world import filesystem_driver


@pytest.fixture(params=["filesystem", "s3-ceph-kms"])
async def blob_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobDriver]:
    driver: BlobDriver
    if request.param == "filesystem":
        driver = filesystem_driver(tmp_path)
    else:
        driver = await open_backend(request, request.param, tmp_path)
    yield driver
    await driver.close()
