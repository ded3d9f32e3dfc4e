"""Two ocigate replicas as in production: blobs in Ceph RGW (SSE-KMS), metadata in PostgreSQL,
the manifest cache in Redis, each replica with its own data dir, both with one signing-keys dir
(as a mounted secret would be). Plus what the tests need to look behind the S3 API: a plain
botocore client and the raw RADOS objects of a bucket."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.session
import pytest
import redis
from botocore.config import Config

from tests.e2e.conftest import clients  # noqa: F401 - skopeo and ctr for the e2e tests here
from tests.registry_client import RegistryClient
from tests.servers import Gateway
from tests.services.ceph import S3Service, new_bucket
from tests.services.postgres import PostgresServer
from tests.services.redis import RedisServer

DATA_POOL = "default.rgw.buckets.data"
REDIS_DB = 5  # a Redis database of this package's own


@dataclass
class Replicas:
    a: Gateway
    b: Gateway
    s3: S3Service
    bucket: str

    @property
    def gateways(self) -> tuple[Gateway, Gateway]:
        return self.a, self.b

    def client(self, gateway: Gateway) -> RegistryClient:
        return RegistryClient(gateway.url)

    def stop(self) -> None:
        for gateway in self.gateways:
            gateway.stop()


def start_replicas(s3: S3Service, root: Path, database: str, redis_url: str, **more: str) -> Replicas:
    """Two gateways on a fresh bucket, one after the other (the first generates the key);
    `more`: further settings of both."""
    bucket = new_bucket()
    env = s3.settings(
        "aws:kms",
        bucket,
        OCIGATE_METADATA_URL=database,
        OCIGATE_REDIS_URL=redis_url,
        OCIGATE_KEYS_DIR=str(root / "keys"),
        **more,
    )
    root.mkdir(parents=True, exist_ok=True)
    started: list[Gateway] = []
    try:
        for name in ("a", "b"):
            gateway = Gateway(root / name, env=env)
            started.append(gateway)
            gateway.start()
    except BaseException:
        for gateway in started:
            gateway.kill()  # start() gives up on a process that may still run
        raise
    return Replicas(started[0], started[1], s3, bucket)


@pytest.fixture(scope="module")
def replicas(
    ceph_s3: S3Service,
    postgres_server: PostgresServer,
    redis_server: RedisServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Replicas]:
    database = postgres_server.create_database()
    redis_url = redis_server.url.rpartition("/")[0] + f"/{REDIS_DB}"
    with redis.Redis.from_url(redis_url) as cache:
        cache.flushdb()
    pair = start_replicas(ceph_s3, tmp_path_factory.mktemp("ha"), database, redis_url)
    try:
        yield pair
    finally:
        pair.stop()
        postgres_server.drop_database(database)
        purge_bucket(ceph_s3, pair.bucket)  # memstore keeps objects in RAM


def s3_client(s3: S3Service) -> Any:
    """A plain (synchronous) botocore S3 client of the store, bypassing the gateway."""
    return botocore.session.get_session().create_client(
        "s3",
        endpoint_url=s3.endpoint_url,
        aws_access_key_id=s3.access_key,
        aws_secret_access_key=s3.secret_key,
        region_name=s3.region,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def ceph(s3: S3Service, tool: str, *args: str) -> bytes:
    assert s3.ceph_conf is not None
    return subprocess.run(
        [tool, "-c", str(s3.ceph_conf), *args], capture_output=True, check=True, timeout=120
    ).stdout


def purge_bucket(s3: S3Service, bucket: str) -> None:
    subprocess.run(
        ["radosgw-admin", "-c", str(s3.ceph_conf), "bucket", "rm", f"--bucket={bucket}", "--purge-objects"],
        capture_output=True,
        timeout=120,
        check=False,
    )


@dataclass(frozen=True)
class RawObject:
    name: str
    size: int
    holds_marker: bool


def rados_objects(s3: S3Service, bucket: str, marker: bytes, workdir: Path) -> list[RawObject]:
    """Every RADOS object of `bucket` in the data pool (heads, multipart parts, shadow stripes),
    read raw as a stolen disk would show it, with whether `marker` occurs in it."""
    stats = json.loads(ceph(s3, "radosgw-admin", "bucket", "stats", f"--bucket={bucket}"))
    prefix = stats["marker"] + "_"
    names = [
        name for name in ceph(s3, "rados", "-p", DATA_POOL, "ls").decode().split() if name.startswith(prefix)
    ]
    workdir.mkdir(parents=True, exist_ok=True)

    def read(numbered: tuple[int, str]) -> RawObject:
        n, name = numbered
        target = workdir / f"object-{n}"
        ceph(s3, "rados", "-p", DATA_POOL, "get", name, str(target))
        data = target.read_bytes()
        target.unlink()
        return RawObject(name, len(data), marker in data)

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(read, enumerate(names)))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On failure, show the end of both replicas' logs: the server side of what the test saw."""
    report: pytest.TestReport = yield
    if report.failed:
        for pair in getattr(item, "funcargs", {}).values():
            if isinstance(pair, Replicas):
                for name, gateway in zip("ab", pair.gateways, strict=True):
                    tail = "\n".join(gateway.log().splitlines()[-40:])
                    report.sections.append((f"replica {name} log (last 40 lines)", tail))
    return report
