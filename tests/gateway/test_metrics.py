"""`/metrics` over real sockets: a push and a pull move the request, latency, byte, cache, auth
and metadata figures by exactly what they did; labels never carry a repository, a path or a
client; with `--workers 2` the counts of both workers add up in one scrape; promtool accepts
every scrape."""

from __future__ import annotations

import os
import re
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.harness.processes import wait_until
from tests.registry_client import OCI_MANIFEST, RegistryClient, digest_of, image_manifest
from tests.servers import Gateway

from .metrics_scrape import Scrape, deltas, promtool_check, scrape, wait_for_scrape

MANIFEST = "/v2/{name}/manifests/{reference}"
BLOB = "/v2/{name}/blobs/{digest}"
UPLOADS = "/v2/{name}/blobs/uploads/"
UPLOAD = "/v2/{name}/blobs/uploads/{reference}"
REQUESTS = "ocigate_http_requests_total"
DURATIONS = "ocigate_http_request_duration_seconds_count"


@pytest.fixture(scope="module")
def metered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gateway = Gateway(tmp_path_factory.mktemp("metered") / "data").start()
    yield gateway
    gateway.stop()


def requests_by(before: Scrape, after: Scrape, route: str, method: str) -> dict[str, float]:
    return {
        s: d for s, d in deltas(before, after, REQUESTS, "status", route=route, method=method).items() if d
    }


def test_a_push_and_a_pull_move_the_figures_by_what_they_did(metered: Gateway) -> None:
    client = RegistryClient(metered.url)
    repository = f"metrics/{uuid.uuid4().hex[:12]}"
    config, layer = b'{"architecture":"amd64","os":"linux"}', os.urandom(300_000)
    manifest = image_manifest(config, [layer])
    before = scrape(metered.url)

    for blob in (config, layer):
        client.push_blob(repository, blob)  # POST ?digest= with the body: monolithic
    client.push_manifest(repository, "v1", manifest)
    pulled = client.request("GET", f"/v2/{repository}/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert pulled.content == manifest
    for blob in (config, layer):
        assert client.request("GET", f"/v2/{repository}/blobs/{digest_of(blob)}").content == blob
    after = scrape(metered.url)

    assert requests_by(before, after, UPLOADS, "POST") == {"2xx": 2}
    assert requests_by(before, after, MANIFEST, "PUT") == {"2xx": 1}
    assert requests_by(before, after, MANIFEST, "GET") == {"2xx": 1}
    assert requests_by(before, after, BLOB, "GET") == {"2xx": 2}
    durations = deltas(before, after, DURATIONS, "kind")
    assert (durations["upload"], durations["manifest"], durations["blob"]) == (2, 2, 2)
    received = deltas(before, after, "ocigate_http_received_bytes_total", "kind")
    assert received["upload"] == len(config) + len(layer)
    assert received["manifest"] == len(manifest)
    sent = deltas(before, after, "ocigate_http_sent_bytes_total", "kind")["blob"]
    assert len(config) + len(layer) < sent < len(config) + len(layer) + 2 * 1024  # + two heads
    # the pull by tag looked the tag and then the manifest up in the cache, once each
    lookups = deltas(before, after, "ocigate_cache_lookups_total", "entry")
    assert (lookups["tag"], lookups["manifest"]) == (1, 1)
    # every one of the 6 requests came with Basic credentials (the metrics scrape did not)
    attempts = deltas(before, after, "ocigate_auth_attempts_total", "result", kind="password")
    assert attempts.get("success") == 6
    assert attempts.get("failure", 0) == 0
    statements = deltas(before, after, "ocigate_metadata_statement_duration_seconds_count", "statement")
    assert statements["write"] >= 3  # two blobs and a manifest recorded
    assert statements["read"] >= 1
    # no repository, digest or tag in any label; the scrape itself is valid
    for secret in (repository, digest_of(layer), 'v1"'):
        assert secret not in after.text
    promtool_check(after.text)


def test_failures_count_as_failures_and_odd_paths_as_templates(metered: Gateway) -> None:
    before = scrape(metered.url)
    junk = uuid.uuid4().hex
    anonymous = RegistryClient(metered.url, auth=None)
    assert anonymous.request("GET", f"/v2/{junk}/manifests/latest").status_code == 401
    wrong = RegistryClient(metered.url, auth=("admin", "wrong"))
    assert wrong.request("GET", f"/v2/{junk}/manifests/latest").status_code == 401
    assert requests.get(f"{metered.url}/{junk}", timeout=10).status_code == 404
    assert requests.request("PURGE", f"{metered.url}/v2/", timeout=10).status_code == 405
    after = scrape(metered.url)

    assert requests_by(before, after, MANIFEST, "GET") == {"4xx": 2}
    assert requests_by(before, after, "unmatched", "GET") == {"4xx": 1}
    assert requests_by(before, after, "/v2/", "other") == {"4xx": 1}  # methods are bounded too
    attempts = deltas(before, after, "ocigate_auth_attempts_total", "result", kind="password")
    assert attempts.get("failure") == 1
    assert junk not in after.text
    assert "PURGE" not in after.text
    promtool_check(after.text)


def test_open_upload_sessions_are_counted(metered: Gateway) -> None:
    client = RegistryClient(metered.url)
    start = scrape(metered.url).value("ocigate_upload_sessions_open")
    location = client.start_upload(f"metrics/{uuid.uuid4().hex[:12]}")
    assert scrape(metered.url).value("ocigate_upload_sessions_open") == start + 1
    assert client.request("DELETE", location).status_code == 204
    assert scrape(metered.url).value("ocigate_upload_sessions_open") == start


def _workers(gateway: Gateway) -> list[int]:
    assert gateway.process is not None
    children = Path(f"/proc/{gateway.process.pid}/task/{gateway.process.pid}/children")
    return [int(pid) for pid in children.read_text().split()]


def test_two_workers_add_up_in_one_scrape(tmp_path: Path) -> None:
    temporary = tmp_path / "tmp"  # where the supervisor makes its metrics directory
    temporary.mkdir()
    gateway = Gateway(tmp_path / "data", env={"OCIGATE_WORKERS": "2", "TMPDIR": str(temporary)}).start()
    directories: list[Path] = []
    try:
        wait_until(lambda: len(_workers(gateway)) == 2, 30, "two workers", gateway.process)
        directories = list(temporary.glob("ocigate-metrics-*"))
        assert len(directories) == 1
        client = RegistryClient(gateway.url)
        repository = f"metrics/{uuid.uuid4().hex[:12]}"
        client.push_image(repository, "v1")
        path = f"{gateway.url}/v2/{repository}/manifests/v1"
        pulls, served_by = 40, set()
        for _ in range(pulls):  # a connection each: the kernel spreads them over the workers
            response = requests.get(
                path,
                auth=client.session.auth,
                headers={"Accept": OCI_MANIFEST, "Connection": "close"},
                timeout=30,
            )
            assert response.status_code == 200
            served_by.add(response.headers["X-Request-Id"].split("-")[0])  # a prefix per process
        assert len(served_by) == 2, "both workers should have served some pulls"

        def pulled(found: Scrape) -> bool:
            return found.value(REQUESTS, route=MANIFEST, method="GET", status="2xx") >= pulls

        for _ in range(4):  # whichever worker answers the scrape, it counts both
            found = wait_for_scrape(gateway.url, pulled)
            assert found.value(REQUESTS, route=MANIFEST, method="GET", status="2xx") == pulls
            assert found.value(DURATIONS, kind="manifest") == pulls + 1  # and the PUT
        promtool_check(found.text)

        # a worker that dies keeps its counts; its live gauges go
        victim = _workers(gateway)[0]
        os.kill(victim, signal.SIGKILL)
        wait_until(
            lambda: victim not in _workers(gateway) and len(_workers(gateway)) == 2, 30, "a new worker"
        )
        found = wait_for_scrape(gateway.url, pulled)
        assert found.value(REQUESTS, route=MANIFEST, method="GET", status="2xx") == pulls
        assert not any(
            re.search(rf"gauge_live\w+_{victim}\.db$", f.name) for d in directories for f in d.iterdir()
        )
    finally:
        gateway.stop()
    assert all(not d.exists() for d in directories), "the supervisor removes its metrics directory"
