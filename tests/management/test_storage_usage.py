"""Storage usage per registry, per repository and of the whole store, in the management API,
`ocigate registry list` and `/metrics`: a blob linked in several repositories of a registry
counts once in the registry and in each repository; a blob of two registries is stored once;
deleting and collecting brings every figure down to what is still reachable."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.metrics_scrape import promtool_check, scrape
from tests.registry_client import Image
from tests.servers import ADMIN_PASSWORD, ADMIN_USER, Gateway, ocigate

from .conftest import Api, v2_client

ADMIN = (ADMIN_USER, ADMIN_PASSWORD)
_STORE_NOTE = re.escape("(each blob once for all registries)")


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    # a store of its own: the test counts every blob in it; usage summed at every scrape
    data_dir: Path = tmp_path_factory.mktemp("usage") / "data"
    server = Gateway(data_dir, env={"OCIGATE_METRICS_USAGE_INTERVAL": "0"}).start()
    yield server
    server.stop()


def _blobs(image: Image) -> dict[bytes, int]:
    return {blob: len(blob) for blob in (image.config, *image.layers)}


def _cli_usage(gateway: Gateway) -> tuple[dict[str, tuple[int, int]], dict[str, dict[str, int]], int, int]:
    """`ocigate registry list --repositories` read back: registries' (bytes, repositories), their
    repositories' bytes, the store's blobs and bytes."""
    registries: dict[str, tuple[int, int]] = {}
    repositories: dict[str, dict[str, int]] = {}
    store = (-1, -1)
    current = ""
    for line in ocigate("registry", "list", "--repositories", data_dir=gateway.data_dir).splitlines():
        if match := re.fullmatch(r"(\S+)\t\S+\t(\d+) bytes\t(\d+) repositories", line):
            current = match[1]
            registries[current] = (int(match[2]), int(match[3]))
            repositories[current] = {}
        elif match := re.fullmatch(r"  (\S+)\t\d+ artifacts\t(\d+) bytes", line):
            repositories[current][match[1]] = int(match[2])
        elif match := re.fullmatch(rf"store\t(\d+) blobs\t(\d+) bytes {_STORE_NOTE}", line):
            store = (int(match[1]), int(match[2]))
        else:
            raise AssertionError(f"unexpected line {line!r}")
    return registries, repositories, *store


def _repository_sizes(api: Api, registry: dict[str, Any]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    page = f"{registry['href']}/repositories?limit=1"
    while page:  # one a page: the paging carries the sizes too
        body = api.get(page).json()
        sizes.update({item["id"]: item["properties"]["size"] for item in body["items"]})
        page = body["next"]
    return sizes


def test_usage_counts_shared_blobs_once_and_follows_deletes_and_collection(gateway: Gateway) -> None:
    api = Api(gateway, ADMIN)
    team, mirror = api.create_registry(), api.create_registry()
    team_name, mirror_name = team["properties"]["name"], mirror["properties"]["name"]
    client = v2_client(gateway, team, ADMIN)
    shared = client.push_image("one", "v1", seed="shared", layers=2)
    for blob in _blobs(shared):  # the same blobs and manifest in a second repository
        client.push_blob("two", blob)
    client.push_manifest("two", "v1", shared.manifest)
    own = client.push_image("three", "v1", seed="own")
    mirrored = v2_client(gateway, mirror, ADMIN)
    for blob in _blobs(shared):  # and in another registry: stored once for both
        mirrored.push_blob("copy", blob)
    mirrored.push_manifest("copy", "v1", shared.manifest)

    shared_bytes, own_bytes = sum(_blobs(shared).values()), sum(_blobs(own).values())
    team_bytes = shared_bytes + own_bytes
    assert api.get(team["href"]).json()["properties"]["storageUsage"] == {"bytes": team_bytes}
    assert api.get(mirror["href"]).json()["properties"]["storageUsage"] == {"bytes": shared_bytes}
    # a repository counts what it links (and its manifests): shared blobs count in each
    assert _repository_sizes(api, team) == {
        "one": shared_bytes + len(shared.manifest),
        "two": shared_bytes + len(shared.manifest),
        "three": own_bytes + len(own.manifest),
    }
    registries, repositories, blobs, stored = _cli_usage(gateway)
    assert registries[team_name] == (team_bytes, 3)
    assert registries[mirror_name] == (shared_bytes, 1)
    assert repositories[team_name] == _repository_sizes(api, team)
    assert (blobs, stored) == (len(_blobs(shared)) + len(_blobs(own)), team_bytes)
    metrics = scrape(gateway.url)
    assert metrics.value("ocigate_registry_stored_bytes", registry=team_name) == team_bytes
    assert metrics.value("ocigate_registry_stored_bytes", registry=mirror_name) == shared_bytes
    assert metrics.value("ocigate_store_blobs") == blobs
    assert metrics.value("ocigate_store_blob_bytes") == team_bytes
    promtool_check(metrics.text)

    # deleting frees nothing in the store until a collection
    assert api.delete(f"{team['href']}/repositories/three").status_code == 204
    assert api.delete(f"{team['href']}/repositories/one").status_code == 204
    assert api.delete(mirror["href"]).status_code == 204
    assert api.get(team["href"]).json()["properties"]["storageUsage"] == {"bytes": shared_bytes}
    assert _cli_usage(gateway)[2:] == (blobs, team_bytes)
    ocigate("gc", "--grace", "0", data_dir=gateway.data_dir)

    registries, repositories, blobs, stored = _cli_usage(gateway)
    assert registries[team_name] == (shared_bytes, 1)
    assert mirror_name not in registries
    assert repositories[team_name] == {"two": shared_bytes + len(shared.manifest)}
    assert (blobs, stored) == (len(_blobs(shared)), shared_bytes)
    metrics = scrape(gateway.url)
    assert metrics.value("ocigate_registry_stored_bytes", registry=team_name) == shared_bytes
    assert metrics.value("ocigate_registry_stored_bytes", registry=mirror_name) == 0  # deleted
    assert (metrics.value("ocigate_store_blobs"), metrics.value("ocigate_store_blob_bytes")) == (
        blobs,
        shared_bytes,
    )
    promtool_check(metrics.text)
