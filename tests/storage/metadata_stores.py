"""The metadata stores over each engine, for the suites that run on both (imported by the
conftests of tests/storage/ and tests/management/)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ocigate.storage.metadata import MetadataStore
from ocigate.storage.metadata.engine import SqlEngine
from ocigate.storage.metadata.postgres import PostgresEngine
from ocigate.storage.metadata.sqlite import SqliteEngine


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
