"""Upload sessions idle past OCIGATE_UPLOAD_TTL: gone for clients at once, and what they staged
(an encrypted file; a multipart upload and tail objects in S3) deleted by the gateway's periodic
expiry, while a session still in use survives."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import botocore.session

from ocigate.storage.config import MIB
from tests.registry_client import RegistryClient
from tests.servers import Gateway
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
