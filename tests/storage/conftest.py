"""Backends for the shared driver suites. Each new driver adds itself to a params list here,
so the same tests run against every backend."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ocigate.storage.blobs import BlobDriver
from ocigate.storage.blobs.filesystem import FilesystemBlobDriver
from ocigate.storage.metadata import MetadataStore
from ocigate.storage.metadata.engine import SqlEngine
from ocigate.storage.metadata.postgres import PostgresEngine
from ocigate.storage.metadata.sqlite import SqliteEngine
from tests.services.ceph import BACKENDS as S3_BACKENDS
from tests.services.ceph import open_backend as open_s3_backend


@pytest.fixture(params=["filesystem", *S3_BACKENDS])
async def blob_driver(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobDriver]:
    driver: BlobDriver
    if request.param in S3_BACKENDS:  # tests/services/ceph.py: Ceph RGW (KMS, SSE-C) and moto
        driver = await open_s3_backend(request, request.param, tmp_path)
    else:
        driver = FilesystemBlobDriver(tmp_path / "blobs", os.urandom(32))
    yield driver
    await driver.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def metadata(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MetadataStore]:
    engine: SqlEngine
    if request.param == "postgres":  # a fresh database per test (tests/services/postgres.py)
        engine = await PostgresEngine.open(request.getfixturevalue("postgres_url"))
    else:
        engine = await SqliteEngine.open(tmp_path / "metadata.db")
    await engine.migrate()
    store = MetadataStore.over(engine)
    yield store
    await store.close()
