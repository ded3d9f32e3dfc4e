"""Backends for the shared driver suites. Each new driver adds itself to a params list here,
so the same tests run against every backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.blobs import BlobDriver
from storage.blobs.filesystem import FilesystemBlobDriver
from storage.metadata.sql import SqlMetadataStore
from storage.metadata.sqlite import SqliteEngine


@pytest.fixture(params=["filesystem"])
async def blob_driver(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobDriver]:
    driver = FilesystemBlobDriver(tmp_path / "blobs")
    yield driver
    await driver.close()


@pytest.fixture(params=["sqlite"])
async def metadata(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlMetadataStore]:
    engine = await SqliteEngine.open(tmp_path / "metadata.db")
    await engine.migrate()
    store = SqlMetadataStore(engine)
    yield store
    await store.close()
