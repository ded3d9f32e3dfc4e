"""Concurrent large blob GETs through the S3 take-over path, mixed with small reads that give
their pooled S3 connections back, on Ceph: every body exact, no 503 (issue 16 A). The same
stress at 10,000 GETs is loadtests/bench/stress_s3_reads.py (figure in the README)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from loadtests.s3_reads import blob_set, client_session, push, stress
from ocigate.storage.blobs.s3 import TAKE_OVER_MIN
from ocigate.storage.config import MIB
from tests.servers import Gateway, basic_auth
from tests.services.ceph import S3Service, new_bucket

LARGE = [9, 12, 16]  # MiB: taken over
SMALL = [2, 3, 5, 7]  # MiB: through aiohttp, back to the pool


@pytest.fixture(scope="module")
def replicas(ceph_s3: S3Service, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Gateway]]:
    """Two gateways on one bucket and one SQLite data dir (the second starts on the first's
    schema)."""
    root = tmp_path_factory.mktemp("stress")
    env = ceph_s3.settings("aws:kms", new_bucket())
    started: list[Gateway] = []
    try:
        for _ in range(2):
            gateway = Gateway(root / "data", env=env)
            started.append(gateway)
            gateway.start()
        yield started
    finally:
        for gateway in started:
            gateway.stop()


async def test_concurrent_large_gets_with_pooled_connections_are_exact(
    replicas: list[Gateway], tmp_path: Path
) -> None:
    assert min(LARGE) * MIB >= TAKE_OVER_MIN > max(SMALL) * MIB
    blobs = blob_set(LARGE, SMALL, seed=16)
    urls = [gateway.url for gateway in replicas]
    async with client_session(basic_auth()) as session:
        for blob in blobs:
            await push(session, urls[0], blob)
        tally = await stress(session, urls, blobs, gets=320, concurrency=16, seed=16)
    assert tally.exact == tally.gets, tally.summary()
    for gateway in replicas:
        assert "failed mid-stream" not in gateway.log()
