"""Upload sessions idle past OCIGATE_UPLOAD_TTL: gone for clients at once, and what they staged
(an encrypted file; a multipart upload and tail objects in S3) deleted by the gateway's periodic
expiry, while a session still in use survives."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import botocore.session

from ocigate.storage.config import MIB
from tests.registry_client import RegistryClient
from tests.servers import Gateway, basic_auth
from tests.services.ceph import S3Service, new_bucket

TTL = 3
REPOSITORY = "expiry/app"
OCTET_STREAM = "application/octet-stream"


def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def stage(client: RegistryClient, size: int) -> str:
    """An upload with `size` bytes staged by one PATCH; its Location."""
    location = client.start_upload(REPOSITORY)
    response = client.request(
        "PATCH",
        location,
        data=os.urandom(size),
        headers={"Content-Type": OCTET_STREAM, "Content-Range": f"0-{size - 1}"},
    )
    assert response.status_code == 202, response.text
    return client.location(response)


def check_expiry(client: RegistryClient, staged: Callable[[str], bool], size: int) -> None:
    idle = stage(client, size)
    upload_id = idle.rstrip("/").rsplit("/", 1)[1].split("?")[0]
    assert staged(upload_id)
    active = stage(client, 1024)
    # the active session is touched more often than the TTL; the idle one is left alone
    deadline = time.monotonic() + TTL + 1.5
    while time.monotonic() < deadline:
        assert client.request("GET", active).status_code == 204
        response = client.request(
            "PATCH", active, data=b"x", headers={"Content-Type": "application/octet-stream"}
        )
        assert response.status_code == 202, response.text
        active = client.location(response)
        time.sleep(0.5)
    gone = client.request("GET", idle)
    assert gone.status_code == 404
    assert gone.json()["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"
    assert wait_for(lambda: not staged(upload_id), 3 * TTL), "staged bytes of the expired upload remain"
    assert client.request("GET", active).status_code == 204


def test_filesystem_upload_expires(tmp_path: Path) -> None:
    gateway = Gateway(tmp_path / "data", env={"OCIGATE_UPLOAD_TTL": str(TTL)}).start()
    try:
        uploads = tmp_path / "data" / "uploads"
        check_expiry(RegistryClient(gateway.url), lambda upload_id: (uploads / upload_id).exists(), MIB)
    finally:
        gateway.stop()


def test_s3_upload_expires_and_its_multipart_upload_is_aborted(ceph_s3: S3Service, tmp_path: Path) -> None:
    bucket = new_bucket()
    env = ceph_s3.settings("aws:kms", bucket, OCIGATE_S3_PART_SIZE=str(5 * MIB), OCIGATE_UPLOAD_TTL=str(TTL))
    gateway = Gateway(tmp_path / "data", env=env).start()
    s3: Any = botocore.session.get_session().create_client(
        "s3",
        endpoint_url=ceph_s3.endpoint_url,
        region_name=ceph_s3.region,
        aws_access_key_id=ceph_s3.access_key,
        aws_secret_access_key=ceph_s3.secret_key,
    )

    def staged(upload_id: str) -> bool:
        prefix = f"blobs/{upload_id}"
        objects = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        multiparts = s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", [])
        return bool(objects or multiparts)

    try:
        check_expiry(RegistryClient(gateway.url), staged, 6 * MIB)  # a part and a tail
    finally:
        gateway.stop()
        s3.close()


def test_uploads_of_a_killed_gateway_are_reaped_soon_when_the_disk_is_short_of_space(tmp_path: Path) -> None:
    """kill -9 during ten uploads leaves ten resumable sessions with their staged bytes: kept
    for the upload TTL as long as there is space, reaped after OCIGATE_UPLOAD_PRESSURE_TTL of
    idleness once the disk is short of it (here: always, with OCIGATE_MIN_FREE_SPACE=1)."""
    data = tmp_path / "data"
    gateway = Gateway(data).start()
    client = RegistryClient(gateway.url)
    locations = [stage(client, 256 * 1024) for _ in range(10)]
    sockets = []
    for location in locations:  # each with a PATCH in flight when the process dies
        sock = socket.create_connection(("127.0.0.1", gateway.port))
        head = f"PATCH {location} HTTP/1.1\r\nHost: x\r\nAuthorization: {basic_auth()}\r\n"
        head += "Content-Length: 1000000\r\n\r\n"
        sock.sendall(head.encode() + b"z" * 100_000)
        sockets.append(sock)
    time.sleep(0.5)
    gateway.kill()
    for sock in sockets:
        sock.close()
    uploads = data / "uploads"
    assert len(os.listdir(uploads)) >= 10

    env = {"OCIGATE_MIN_FREE_SPACE": "1.0", "OCIGATE_UPLOAD_PRESSURE_TTL": "2"}
    gateway = Gateway(data, env=env, port=gateway.port).start()
    try:
        assert wait_for(lambda: not os.listdir(uploads), 30), os.listdir(uploads)
        client = RegistryClient(gateway.url)
        for location in locations:
            assert client.request("GET", location).status_code == 404
        assert "disk short of space: expired" in gateway.log()
    finally:
        gateway.stop()


def test_staging_without_a_session_is_deleted_after_an_hour(tmp_path: Path) -> None:
    data = tmp_path / "data"
    gateway = Gateway(data, env={"OCIGATE_UPLOAD_TTL": str(TTL)}).start()
    try:
        uploads = data / "uploads"
        old, fresh = uploads / ("a" * 32), uploads / ("b" * 32)  # no session has these ids
        for path in (old, fresh, uploads / ("a" * 32 + ".tail")):
            path.write_bytes(b"staged bytes of a session that is gone")
        two_hours_ago = time.time() - 7200
        os.utime(old, (two_hours_ago, two_hours_ago))
        os.utime(uploads / ("a" * 32 + ".tail"), (two_hours_ago, two_hours_ago))
        assert wait_for(lambda: not old.exists(), 10 * TTL)
        assert not (uploads / ("a" * 32 + ".tail")).exists()
        assert fresh.exists()  # maybe a session being created right now: left for an hour
    finally:
        gateway.stop()
