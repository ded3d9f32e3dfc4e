"""The metadata store or the blob store down under a gateway: 503 UNAVAILABLE with Retry-After
(never a 500), one log line per outage, /readyz failing meanwhile, recovery without a restart
(issue 16 C)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from tests.gateway.test_cache_outage import metric
from tests.registry_client import OCI_MANIFEST, RegistryClient, digest_of
from tests.servers import ADMIN_PASSWORD, ADMIN_USER, Gateway
from tests.services.ceph import RadosGateway, S3Service, new_bucket
from tests.services.postgres import PostgresServer


def assert_unavailable(response: requests.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["errors"][0]["code"] == "UNAVAILABLE"
    assert int(response.headers["Retry-After"]) > 0


def readyz(gateway: Gateway) -> requests.Response:
    return requests.get(f"{gateway.url}/readyz", timeout=30)


def wait_until_answering(gateway: Gateway, store: str, request: Callable[[], object]) -> None:
    """Requests until the gateway counts `store` as up again (it settles for a few seconds)."""
    for _ in range(300):
        request()
        if metric(gateway, "ocigate_store_up", store) == 1:
            return
        time.sleep(0.1)
    raise AssertionError(f"the {store} store did not count as up again")


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL of this test's own: it is stopped and started again."""
    server = PostgresServer()
    yield server
    server.stop()


def test_postgres_down_is_503_and_comes_back_without_a_restart(
    own_postgres: PostgresServer, tmp_path: Path
) -> None:
    database = own_postgres.create_database()
    gateway = Gateway(tmp_path / "data", env={"OCIGATE_METADATA_URL": database}).start()
    try:
        client = RegistryClient(gateway.url)
        repository = "outage/postgres"
        image = client.push_image(repository, "v1", seed=uuid.uuid4().hex)
        assert readyz(gateway).status_code == 200

        own_postgres.halt()
        for _ in range(3):
            assert_unavailable(client.request("GET", f"/v2/{repository}/manifests/{image.digest}"))
            assert_unavailable(client.request("GET", f"/v2/{repository}/tags/list"))
            assert_unavailable(client.request("POST", f"/v2/{repository}/blobs/uploads/"))
        management = requests.get(
            f"{gateway.url}/api/registries", auth=(ADMIN_USER, ADMIN_PASSWORD), timeout=30
        )
        assert management.status_code == 503, management.text
        assert management.json()["messages"][0]["errorCode"] == "SERVICE_UNAVAILABLE"
        assert int(management.headers["Retry-After"]) > 0
        ready = readyz(gateway)
        assert ready.status_code == 503
        assert ready.json()["metadata"] != "ok"
        assert ready.json()["blobs"] == "ok"
        assert metric(gateway, "ocigate_store_up", "metadata") == 0

        own_postgres.start()
        response = client.request("GET", f"/v2/{repository}/manifests/v1", headers={"Accept": OCI_MANIFEST})
        assert response.status_code == 200, response.text
        assert response.content == image.manifest
        client.push_image(repository, "v2", seed=uuid.uuid4().hex)
        assert readyz(gateway).status_code == 200
        wait_until_answering(
            gateway, "metadata", lambda: client.request("GET", f"/v2/{repository}/tags/list")
        )
        assert metric(gateway, "ocigate_store_outages_total", "metadata") == 1
    finally:
        gateway.stop()
    log = gateway.log()
    # the health transition, once ("metadata store unavailable, retry later" is the errors' text,
    # which e.g. a flush of the usage counters during the outage logs as well)
    assert log.count("metadata store unavailable (") == 1, log
    assert log.count("metadata store answers again") == 1, log
    assert "Traceback" not in log
    assert " 500 " not in log


def test_s3_down_is_503_and_comes_back_without_a_restart(ceph_s3: S3Service, tmp_path: Path) -> None:
    rgw = RadosGateway(ceph_s3, tmp_path / "rgw")
    gateway = Gateway(tmp_path / "data", env=rgw.service.settings("aws:kms", new_bucket()))
    try:
        gateway.start()
        client = RegistryClient(gateway.url)
        repository = "outage/s3"
        image = client.push_image(repository, "v1", seed=uuid.uuid4().hex)
        layer = f"/v2/{repository}/blobs/{digest_of(image.layers[0])}"

        rgw.stop()
        for _ in range(3):
            assert_unavailable(client.request("GET", layer))
            assert_unavailable(
                client.request(
                    "POST",
                    f"/v2/{repository}/blobs/uploads/",
                    params={"digest": "sha256:" + "0" * 64},
                    data=b"x" * 1000,
                )
            )
        ready = readyz(gateway)
        assert ready.status_code == 503
        assert ready.json()["blobs"] != "ok"
        assert ready.json()["metadata"] == "ok"
        # what needs no blob bytes still works
        response = client.request("GET", f"/v2/{repository}/manifests/v1", headers={"Accept": OCI_MANIFEST})
        assert response.status_code == 200

        rgw.start()
        for _ in range(300):  # the breaker lets a request through to probe within seconds
            response = client.request("GET", layer)
            if response.status_code != 503:
                break
            time.sleep(0.1)
        assert response.status_code == 200
        assert response.content == image.layers[0]
        client.push_image(repository, "v2", seed=uuid.uuid4().hex)
        assert readyz(gateway).status_code == 200
        # a write: the layer's bytes may now come from memory (a lingering flight), not from S3
        wait_until_answering(gateway, "blobs", lambda: client.post_blob(repository, uuid.uuid4().bytes))
    finally:
        gateway.stop()
        rgw.stop()
    log = gateway.log()
    assert log.count("blobs store unavailable") == 1, log
    assert log.count("blobs store answers again") == 1, log
    assert "Traceback" not in log
