"""The embedded default (SQLite and encrypted files) on a disk that fills up: 507 with a clear
message instead of a 500, the failed upload's staged bytes released at once, pulls still
served, and pushes working again as soon as there is space, without a restart (issue 16 C)."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from ocigate.storage.config import MIB
from tests.registry_client import OCI_MANIFEST, RegistryClient
from tests.servers import Gateway

DISK = 24 * MIB


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of DISK bytes (the tests run as root, as tests/run does)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"cannot mount a small tmpfs for the full-disk test (needs root): {result.stderr}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def free(path: Path) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def assert_full(response: requests.Response) -> None:
    assert response.status_code == 507, response.text
    error = response.json()["errors"][0]
    assert error["code"] == "UNAVAILABLE"
    assert "full" in error["message"]


def test_a_full_disk_is_507_and_releases_the_upload_at_once(small_disk: Path) -> None:
    gateway = Gateway(small_disk / "data").start()
    try:
        client = RegistryClient(gateway.url)
        repository = "full/disk"
        image = client.push_image(repository, "v1", seed=uuid.uuid4().hex)
        uploads = small_disk / "data" / "uploads"
        before = free(small_disk)

        # a chunked upload larger than the disk
        location = client.start_upload(repository)
        big = os.urandom(DISK)
        response = client.request(
            "PATCH", location, data=big, headers={"Content-Type": "application/octet-stream"}
        )
        assert_full(response)
        assert os.listdir(uploads) == []  # its staged bytes are gone at once ...
        assert free(small_disk) >= before - MIB  # ... and so the space is back
        assert client.request("GET", location).status_code == 404  # the session with them

        # a monolithic one
        assert_full(client.post_blob(repository, big))
        assert os.listdir(uploads) == []

        # the database's disk full: a manifest PUT
        filler = small_disk / "filler"
        with filler.open("wb") as file:
            try:
                while True:
                    file.write(b"\0" * MIB)
                    file.flush()
            except OSError:
                pass
        for n in range(3):
            response = client.request(
                "PUT",
                f"/v2/{repository}/manifests/t{n}",
                data=image.manifest,
                headers={"Content-Type": OCI_MANIFEST},
            )
            assert response.status_code in (503, 507), response.text
        # pulls still work
        response = client.request("GET", f"/v2/{repository}/manifests/v1", headers={"Accept": OCI_MANIFEST})
        assert response.status_code == 200
        assert response.content == image.manifest
        assert requests.get(f"{gateway.url}/readyz", timeout=10).status_code == 200

        filler.unlink()
        client.push_manifest(repository, "after", image.manifest)
        client.push_image(repository, "v2", seed=uuid.uuid4().hex)
    finally:
        gateway.stop()
    log = gateway.log()
    assert "Traceback" not in log, log
    # one outage of each store, however often a write failed meanwhile
    assert log.count("blobs store unavailable") == 1, log
    assert log.count("metadata store unavailable") <= 1, log
