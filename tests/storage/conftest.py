"""Backends for the shared driver suites. Each new driver adds itself to a params list here
(metadata engines: metadata_stores.py), so the same tests run against every backend."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ocigate.storage.blobs import BlobDriver
from ocigate.storage.blobs.filesystem import FilesystemBlobDriver
from ocigate.storage.blobs.s3 import S3BlobDriver
from tests.services.ceph import BACKENDS as S3_BACKENDS
from tests.services.ceph import S3Service
from tests.services.ceph import open_backend as open_s3_backend
from tests.storage.metadata_stores import metadata as metadata
from tests.storage.shared_reads import blob as blob
from tests.storage.shared_reads import driver as driver


@pytest.fixture(params=["filesystem", *S3_BACKENDS])
async def blob_driver(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobDriver]:
    driver: BlobDriver
    if request.param in S3_BACKENDS:  # tests/services/ceph.py: Ceph RGW (KMS, SSE-C) and moto
        driver = await open_s3_backend(request, request.param, tmp_path)
    else:
        driver = FilesystemBlobDriver(tmp_path / "blobs", os.urandom(32))
    async with left_nothing(driver):
        yield driver


@pytest.fixture(params=[name for name, (_, sse) in S3_BACKENDS.items() if sse != "sse-c"])
async def redirecting_driver(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobDriver]:
    """A driver with redirects on: S3 (a client cannot hold an SSE-C key, so not with SSE-C)."""
    store, sse = S3_BACKENDS[request.param]
    service: S3Service = request.getfixturevalue(store)
    driver = await service.open_driver(
        request.getfixturevalue("monkeypatch"), sse, tmp_path, s3_redirect=True
    )
    async with left_nothing(driver):
        yield driver


@contextlib.asynccontextmanager
async def left_nothing(driver: BlobDriver) -> AsyncIterator[None]:
    """After the test (which deletes what it commits), the store must hold nothing: no staged
    file, tail object or open multipart upload (Distribution's testsuites check the same)."""
    try:
        yield
        assert await stored(driver) == [], "left behind in the store"
    finally:
        await driver.close()


async def stored(driver: BlobDriver) -> list[str]:
    """Everything in the driver's store: files under a filesystem root; objects and open
    multipart uploads in an S3 bucket (each test's driver has a bucket of its own)."""
    if isinstance(driver, FilesystemBlobDriver):
        root = driver._blobs.parent
        return sorted(str(path.relative_to(root)) for path in root.rglob("*") if not path.is_dir())
    assert isinstance(driver, S3BlobDriver)
    client: Any = driver._s3.client
    found = []
    async for page in client.get_paginator("list_objects_v2").paginate(Bucket=driver._s3.name):
        found += [item["Key"] for item in page.get("Contents", ())]
    async for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=driver._s3.name):
        found += [f"{item['Key']} (multipart upload)" for item in page.get("Uploads", ())]
    return sorted(found)
