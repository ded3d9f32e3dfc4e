"""The gateway over S3 (Ceph RGW with SSE-KMS and SSE-C): push and pull, chunked uploads that
cross part boundaries, Range reads, and proof from Ceph's raw RADOS objects that layers are
encrypted at rest."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import struct
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from ocigate.storage.config import MIB
from tests.registry_client import RegistryClient, digest_of
from tests.servers import ADMIN_PASSWORD, ADMIN_USER, Gateway
from tests.services.ceph import Ceph, S3Service, new_bucket

from .metrics_scrape import deltas, promtool_check, scrape

PART = 5 * MIB
DATA_POOL = "default.rgw.buckets.data"


def start_gateway(service: S3Service, sse: str, root: Path) -> tuple[Gateway, str]:
    bucket = new_bucket()
    root.mkdir(parents=True, exist_ok=True)
    env = service.settings(sse, bucket, OCIGATE_S3_PART_SIZE=str(PART))
    gateway = Gateway(root / "data", env=env)
    try:
        return gateway.start(), bucket
    except BaseException:
        gateway.kill()  # start() gives up on a process that may still run
        raise


@pytest.fixture(scope="module", params=["aws:kms", "sse-c"])
def s3_gateway(
    request: pytest.FixtureRequest, ceph_s3: S3Service, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Gateway, str, str]]:
    """A gateway storing blobs in Ceph with each SSE mode: (gateway, sse, bucket)."""
    gateway, bucket = start_gateway(ceph_s3, request.param, tmp_path_factory.mktemp("s3gw"))
    yield gateway, request.param, bucket
    gateway.stop()


@pytest.fixture
def s3_client(s3_gateway: tuple[Gateway, str, str]) -> RegistryClient:
    return RegistryClient(s3_gateway[0].url)


def test_push_and_pull_image(s3_client: RegistryClient, repository: str) -> None:
    image = s3_client.push_image(repository, "v1", layers=2, seed=uuid.uuid4().hex)
    response = s3_client.request(
        "GET",
        f"/v2/{repository}/manifests/v1",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert response.status_code == 200
    assert response.content == image.manifest
    for blob in (image.config, *image.layers):
        response = s3_client.request("GET", f"/v2/{repository}/blobs/{digest_of(blob)}")
        assert response.status_code == 200
        assert response.content == blob
        head = s3_client.request("HEAD", f"/v2/{repository}/blobs/{digest_of(blob)}")
        assert head.headers["Content-Length"] == str(len(blob))


def test_s3_calls_are_counted_and_timed_by_operation(
    s3_gateway: tuple[Gateway, str, str], s3_client: RegistryClient, repository: str
) -> None:
    before = scrape(s3_gateway[0].url)
    blob = os.urandom(100_000)
    s3_client.push_blob(repository, blob)  # below the part size: one PutObject
    assert s3_client.request("GET", f"/v2/{repository}/blobs/{digest_of(blob)}").content == blob
    after = scrape(s3_gateway[0].url)
    calls = deltas(before, after, "ocigate_s3_requests_total", "operation")
    assert calls["PutObject"] == 1
    assert calls["GetObject"] == 1
    timed = deltas(before, after, "ocigate_s3_request_duration_seconds_count", "operation")
    assert {op: n for op, n in timed.items() if n} == {op: n for op, n in calls.items() if n}
    assert after.total("ocigate_s3_errors_total") == before.total("ocigate_s3_errors_total")
    assert repository not in after.text
    promtool_check(after.text)


def test_chunked_upload_across_parts_and_range_reads(s3_client: RegistryClient, repository: str) -> None:
    content = hashlib.shake_256(uuid.uuid4().bytes).digest(40 * MIB + 12_345)
    upload = s3_client.start_upload(repository)
    offset = 0
    # odd PATCH sizes, ends inside parts; every other PATCH streams as Transfer-Encoding: chunked
    for n, size in enumerate([1_000_003, 7_340_033, 4_194_301, 11_111_111, 3, 9_999_991]):
        piece = content[offset : offset + size]
        if n % 2:
            data = (piece[i : i + 65_537] for i in range(0, len(piece), 65_537))
            response = s3_client.request("PATCH", upload, data=data)
        else:
            headers = {"Content-Range": f"{offset}-{offset + len(piece) - 1}"}
            response = s3_client.request("PATCH", upload, data=piece, headers=headers)
        assert response.status_code == 202, response.text
        offset += len(piece)
        assert response.headers["Range"] == f"0-{offset - 1}"
        upload = s3_client.location(response)
    digest = digest_of(content)
    response = s3_client.request("PUT", upload, params={"digest": digest}, data=content[offset:])
    assert response.status_code == 201, response.text

    response = s3_client.request("GET", f"/v2/{repository}/blobs/{digest}", stream=True)
    assert response.status_code == 200
    hasher = hashlib.sha256()
    for chunk in response.iter_content(1 << 20):
        hasher.update(chunk)
    assert f"sha256:{hasher.hexdigest()}" == digest
    for first, last in [
        (PART - 7, PART + 7),
        (0, 0),
        (3 * PART, 5 * PART + 1),
        (len(content) - 9, len(content) - 1),
    ]:
        response = s3_client.request(
            "GET", f"/v2/{repository}/blobs/{digest}", headers={"Range": f"bytes={first}-{last}"}
        )
        assert response.status_code == 206
        assert response.headers["Content-Range"] == f"bytes {first}-{last}/{len(content)}"
        assert response.content == content[first : last + 1]


def test_monolithic_multipart_blob(s3_client: RegistryClient, repository: str) -> None:
    content = hashlib.shake_256(uuid.uuid4().bytes).digest(2 * PART + 99)
    digest = s3_client.push_blob(repository, content)
    response = s3_client.request("GET", f"/v2/{repository}/blobs/{digest}")
    assert response.content == content


def rados(service: S3Service, *args: str) -> bytes:
    assert service.ceph_conf is not None
    return subprocess.run(
        ["rados", "-c", str(service.ceph_conf), *args], capture_output=True, check=True, timeout=120
    ).stdout


def raw_objects(service: S3Service, bucket: str, workdir: Path) -> dict[str, bytes]:
    """The bucket's objects as RADOS stores them: what a stolen disk would show."""
    assert service.ceph_conf is not None
    stats = subprocess.run(
        ["radosgw-admin", "-c", str(service.ceph_conf), "bucket", "stats", f"--bucket={bucket}"],
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout
    marker = json.loads(stats)["marker"]
    names = [
        name
        for name in rados(service, "-p", DATA_POOL, "ls").decode().split()
        if name.startswith(marker + "_")
    ]
    objects = {}
    for n, name in enumerate(names):
        target = workdir / f"object-{n}"
        rados(service, "-p", DATA_POOL, "get", name, str(target))
        objects[name] = target.read_bytes()
    return objects


@pytest.mark.parametrize("sse", ["aws:kms", "sse-c", "none"])
def test_layers_are_encrypted_at_rest(ceph_s3: S3Service, tmp_path: Path, sse: str) -> None:
    marker = f"OCIGATE-PLAINTEXT-MARKER-{uuid.uuid4().hex}".encode()
    small = marker * 1000  # one PutObject
    large = (marker + b"\n") * (3 * PART // 2 // len(marker))  # a part, and a tail copied in
    gateway, bucket = start_gateway(ceph_s3, sse, tmp_path / "gw")
    try:
        client = RegistryClient(gateway.url)
        for layer in (small, large):
            client.push_blob("proof/layers", layer)
            assert client.request("GET", f"/v2/proof/layers/blobs/{digest_of(layer)}").content == layer
    finally:
        gateway.stop()
    objects = raw_objects(ceph_s3, bucket, tmp_path)
    assert sum(map(len, objects.values())) >= len(small) + len(large)  # the bytes are all there
    holding = [name for name, data in objects.items() if marker in data]
    if sse == "none":  # the control: the method does find plaintext when it is there
        assert holding
    else:
        assert holding == []


def test_store_down_is_a_quick_503(tmp_path: Path) -> None:
    """Its own Ceph (the session's one stays up): pushes fail fast with 503 UNAVAILABLE."""
    ceph = Ceph(tmp_path / "ceph")
    try:
        service = ceph.start()
        gateway, _ = start_gateway(service, "aws:kms", tmp_path / "gw")
        try:
            client = RegistryClient(gateway.url)
            client.push_blob("down/layers", b"stored before the outage")
            ceph.down()
            response = client.request(
                "POST",
                "/v2/down/layers/blobs/uploads/",
                params={"digest": digest_of(b"pushed during the outage")},
                data=b"pushed during the outage",
                timeout=60,  # a guard against a hang in retries, not a measure of speed
            )
            assert response.status_code == 503
            assert response.json()["errors"][0]["code"] == "UNAVAILABLE"
            failed = scrape(gateway.url)
            assert failed.total("ocigate_s3_errors_total", kind="connection") >= 1
            assert failed.value("ocigate_store_up", store="blobs") == 0
        finally:
            gateway.stop()
    finally:
        ceph.down()


def test_redirect_mode_sends_blob_gets_to_a_presigned_url(ceph_s3: S3Service, tmp_path: Path) -> None:
    env = ceph_s3.settings("aws:kms", new_bucket(), OCIGATE_S3_REDIRECT="true")
    gateway = Gateway(tmp_path / "data", env=env).start()
    try:
        client = RegistryClient(gateway.url)
        content = hashlib.shake_256(uuid.uuid4().bytes).digest(PART + 3)
        digest = client.push_blob("redirect/app", content)
        response = client.request("GET", f"/v2/redirect/app/blobs/{digest}")
        assert response.status_code == 307
        assert response.headers["Docker-Content-Digest"] == digest
        fetched = requests.get(response.headers["Location"], headers={"Range": "bytes=5-9"}, timeout=30)
        assert fetched.status_code == 206
        assert fetched.content == content[5:10]
        assert requests.get(response.headers["Location"], timeout=30).content == content
        head = client.request("HEAD", f"/v2/redirect/app/blobs/{digest}")  # HEAD stays local
        assert head.status_code == 200
        assert head.headers["Content-Length"] == str(len(content))
    finally:
        gateway.stop()


def test_client_leaving_mid_blob_leaves_nothing_behind(
    s3_gateway: tuple[Gateway, str, str], s3_client: RegistryClient, repository: str
) -> None:
    """Large blobs go from the store's connection to the client's by splice (s3_body.py): a
    client that goes away mid-blob leaves no descriptor behind (pipes, duplicated sockets, the
    store's connection), and the next client gets the blob whole."""
    gateway = s3_gateway[0]
    assert gateway.process is not None
    content = os.urandom(24 * MIB)
    digest = s3_client.push_blob(repository, content)
    path = f"/v2/{repository}/blobs/{digest}"
    assert s3_client.request("GET", path).content == content  # connections to the store opened

    process = gateway.process
    assert process is not None

    def descriptors() -> int:
        return len(os.listdir(f"/proc/{process.pid}/fd"))

    before = descriptors()
    credentials = base64.b64encode(f"{ADMIN_USER}:{ADMIN_PASSWORD}".encode()).decode()
    request = f"GET {path} HTTP/1.1\r\nHost: {gateway.hostport}\r\nAuthorization: Basic {credentials}\r\n\r\n"
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", gateway.port)) as sock:
            sock.sendall(request.encode())
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset
    deadline = time.monotonic() + 10
    while descriptors() > before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert descriptors() <= before
    assert hashlib.sha256(s3_client.request("GET", path).content).hexdigest() == digest.split(":")[1]
