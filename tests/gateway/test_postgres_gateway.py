"""Two gateway replicas over one PostgreSQL, one Redis and one blob directory: any request may
land on either, as behind a load balancer (docs/design.md, "Embedded default and scale-out")."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from tests.registry_client import RegistryClient, assert_manifest_served, digest_of, image_manifest
from tests.servers import Gateway
from tests.services.postgres import PostgresServer
from tests.services.redis import RedisServer

TAG_TTL = 1.0  # storage.cache.MetadataCache.tag_ttl


@pytest.fixture(scope="module")
def replicas(
    postgres_server: PostgresServer, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Gateway, Gateway]]:
    database = postgres_server.create_database()
    redis_url = redis_server.url.rpartition("/")[0] + "/3"  # a Redis db of this module's own
    with redis.Redis.from_url(redis_url) as client:
        client.flushdb()
    root = tmp_path_factory.mktemp("replicas")
    env = {"OCIGATE_METADATA_URL": database, "OCIGATE_REDIS_URL": redis_url}
    data_dir = root / "data"  # blobs and keys: shared, as a network filesystem would be
    started: list[Gateway] = []
    try:
        # one after the other: the first one generates the keys into the shared data dir
        # (both append to one log, data.log)
        for _ in range(2):
            gateway = Gateway(data_dir, env=env)
            started.append(gateway)
            gateway.start()
        yield started[0], started[1]
    finally:
        for gateway in started:
            gateway.stop()
        postgres_server.drop_database(database)


@pytest.fixture
def a(replicas: tuple[Gateway, Gateway]) -> RegistryClient:
    return RegistryClient(replicas[0].url)


@pytest.fixture
def b(replicas: tuple[Gateway, Gateway]) -> RegistryClient:
    return RegistryClient(replicas[1].url)


def test_no_sqlite_file_when_metadata_is_in_postgres(replicas: tuple[Gateway, Gateway]) -> None:
    assert not (replicas[0].data_dir / "metadata.db").exists()


def test_pushed_through_one_pulled_through_the_other(
    a: RegistryClient, b: RegistryClient, repository: str
) -> None:
    image = a.push_image(repository, "v1", layers=2, seed="pull-elsewhere")
    assert_manifest_served(b, repository, image, "v1")
    for blob in (image.config, *image.layers):
        response = b.request("GET", f"/v2/{repository}/blobs/{digest_of(blob)}")
        assert response.status_code == 200
        assert response.content == blob
    assert b.request("GET", f"/v2/{repository}/tags/list").json()["tags"] == ["v1"]
    assert repository in b.request("GET", "/v2/_catalog").json()["repositories"]


def test_tag_moved_on_one_is_seen_on_the_other(a: RegistryClient, b: RegistryClient, repository: str) -> None:
    first = a.push_image(repository, "moving", seed="first")
    assert b.request("HEAD", f"/v2/{repository}/manifests/moving").headers["Docker-Content-Digest"] == (
        first.digest
    )  # now in the shared cache
    for writer, reader, seed in ((a, b, "second"), (b, a, "third")):
        moved = writer.push_image(repository, "moving", seed=seed)
        started = time.monotonic()
        while True:
            seen = reader.request("HEAD", f"/v2/{repository}/manifests/moving")
            if seen.headers["Docker-Content-Digest"] == moved.digest:
                break
            # a deadline, not a duration: the tag TTL plus room for a busy machine
            assert time.monotonic() - started < TAG_TTL + 10, "tag move not seen within the tag TTL"
            time.sleep(0.05)


def test_manifest_deleted_on_one_is_gone_on_the_other(
    a: RegistryClient, b: RegistryClient, repository: str
) -> None:
    image = a.push_image(repository, "doomed", seed="doomed")
    assert b.request("GET", f"/v2/{repository}/manifests/{image.digest}").status_code == 200  # cached
    assert a.request("DELETE", f"/v2/{repository}/manifests/{image.digest}").status_code == 202
    assert b.request("GET", f"/v2/{repository}/manifests/{image.digest}").status_code == 404


def test_upload_started_on_one_goes_on_and_finishes_on_the_other(
    a: RegistryClient, b: RegistryClient, repository: str
) -> None:
    content = os.urandom(3 * 1024 * 1024 + 17)
    pieces = [content[:1_000_000], content[1_000_000:2_500_000], content[2_500_000:]]
    upload = a.start_upload(repository)
    offset = 0
    for client, piece in zip((b, a, b), pieces, strict=True):
        response = client.request(
            "PATCH",
            upload,
            data=piece,
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{offset + len(piece) - 1}",
            },
        )
        assert response.status_code == 202, response.text
        offset += len(piece)
        upload = client.location(response)
        # the other replica knows how far the upload got
        other = a if client is b else b
        assert other.request("GET", upload).headers["Range"] == f"0-{offset - 1}"
    done = b.request("PUT", upload, params={"digest": digest_of(content)})
    assert done.status_code == 201, done.text
    assert a.request("GET", f"/v2/{repository}/blobs/{digest_of(content)}").content == content


def test_a_stale_chunk_on_the_other_replica_is_refused(
    a: RegistryClient, b: RegistryClient, repository: str
) -> None:
    upload = a.start_upload(repository)
    response = a.request("PATCH", upload, data=b"0123456789", headers={"Content-Range": "0-9"})
    assert response.status_code == 202
    # a retry of the same chunk through the other replica: the offset moved on, out of order
    stale = b.request("PATCH", upload, data=b"0123456789", headers={"Content-Range": "0-9"})
    assert stale.status_code == 416
    assert a.request("GET", upload).headers["Range"] == "0-9"


def test_tag_race_across_replicas_leaves_one_written_digest(
    a: RegistryClient, b: RegistryClient, repository: str
) -> None:
    config = b'{"architecture":"amd64","os":"linux"}'
    a.push_blob(repository, config)
    manifests = [image_manifest(config, annotations={"n": str(i)}) for i in range(12)]
    urls = [a.base_url, b.base_url]

    def push(i: int) -> int:
        return RegistryClient(urls[i % 2]).push_manifest(repository, "race", manifests[i]).status_code

    with ThreadPoolExecutor(12) as pool:
        assert set(pool.map(push, range(12))) == {201}
    time.sleep(TAG_TTL + 0.1)  # past any cached entry: both read what PostgreSQL holds
    seen = {c.request("GET", f"/v2/{repository}/manifests/race").content for c in (a, b)}
    assert len(seen) == 1
    assert seen.pop() in manifests
