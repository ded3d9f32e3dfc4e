"""Redis (the shared cache) stopped and started again under a gateway: no request fails for it,
writes made meanwhile are never answered from entries of before (issue 16 B)."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.registry_client import OCI_MANIFEST, RegistryClient
from tests.servers import Gateway
from tests.services.redis import RedisServer


@pytest.fixture
def redis_and_gateway(tmp_path: Path) -> Iterator[tuple[RedisServer, Gateway]]:
    # persistent: Redis comes back with the entries it had, as one that was only unreachable
    server = RedisServer(tmp_path / "redis", persistent=True)
    gateway = Gateway(tmp_path / "data", env={"OCIGATE_REDIS_URL": server.url})
    try:
        yield server, gateway.start()
    finally:
        gateway.stop()
        server.stop()


def metric(gateway: Gateway, name: str, store: str) -> float:
    text = requests.get(f"{gateway.url}/metrics", timeout=10).text
    match = re.search(rf'^{name}{{store="{store}"}} (\S+)$', text, re.MULTILINE)
    assert match is not None, text
    return float(match.group(1))


def wait_for_metric(gateway: Gateway, name: str, store: str, value: float) -> None:
    for _ in range(300):  # 30 s at most
        if metric(gateway, name, store) == value:
            return
        time.sleep(0.1)
    raise AssertionError(f"{name}{{store={store!r}}} did not become {value}")


def manifest_status(client: RegistryClient, repository: str, reference: str) -> tuple[int, str]:
    response = client.request(
        "GET", f"/v2/{repository}/manifests/{reference}", headers={"Accept": OCI_MANIFEST}
    )
    return response.status_code, response.headers.get("Docker-Content-Digest", "")


def test_redis_down_fails_no_request_and_nothing_of_before_is_served_after(
    redis_and_gateway: tuple[RedisServer, Gateway], repository: str
) -> None:
    redis_server, gateway = redis_and_gateway
    client = RegistryClient(gateway.url)
    old = client.push_image(repository, "v1", seed=uuid.uuid4().hex)
    assert manifest_status(client, repository, "v1") == (200, old.digest)  # now cached
    assert manifest_status(client, repository, old.digest) == (200, old.digest)

    redis_server.stop()
    new = client.push_image(repository, "v1", seed=uuid.uuid4().hex)  # 201, not 500
    response = client.request("DELETE", f"/v2/{repository}/manifests/{old.digest}")
    assert response.status_code == 202, response.text
    for _ in range(5):
        assert manifest_status(client, repository, "v1") == (200, new.digest)
        assert manifest_status(client, repository, old.digest)[0] == 404
    assert metric(gateway, "ocigate_store_up", "cache") == 0
    assert metric(gateway, "ocigate_store_failures_total", "cache") >= 1

    redis_server.start()  # with the entries of the old manifest, whose deletion never reached it
    for _ in range(5):  # at once, and after the gateway found Redis again
        assert manifest_status(client, repository, old.digest)[0] == 404
        assert manifest_status(client, repository, "v1") == (200, new.digest)
    wait_for_metric(gateway, "ocigate_store_up", "cache", 1)
    assert manifest_status(client, repository, old.digest)[0] == 404
    assert manifest_status(client, repository, "v1") == (200, new.digest)
    assert metric(gateway, "ocigate_store_outages_total", "cache") == 1

    log = gateway.log()
    assert log.count("cache store unavailable") == 1, log  # once per outage, not per request
    assert log.count("cache store answers again") == 1, log
    assert "Traceback" not in log
