"""Two stateless replicas over Ceph RGW (SSE-KMS), PostgreSQL and Redis (issue 3, "Fault tests"):
what one replica wrote the other serves; real clients round-trip images across them and the
RADOS objects behind hold no plaintext; an upload whose replica is killed -9 mid-PATCH goes on
and finishes on the other; a store outage mid-push is a quick 503 and leaves nothing behind."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from itertools import cycle
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from tests.e2e.conftest import Clients
from tests.e2e.images import (
    OCI_CONFIG,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    REF_NAME,
    Descriptor,
    LayoutImage,
    Manifest,
    blob_digests,
    sha256_digest,
    tagged_descriptor,
)
from tests.registry_client import RegistryClient, assert_manifest_served, digest_of
from tests.servers import ADMIN_PASSWORD, ADMIN_USER
from tests.services.ceph import RadosGateway, S3Service
from tests.services.postgres import PostgresServer
from tests.services.redis import RedisServer

from .conftest import REDIS_DB, Replicas, rados_objects, s3_client, start_replicas

MIB = 1 << 20
PART = 16 * MIB  # the gateways run with the default OCIGATE_S3_PART_SIZE
CREDS = f"{ADMIN_USER}:{ADMIN_PASSWORD}"
QUICK = 10.0  # seconds: a store that is down must not hang the client


def stream_digest(response: requests.Response) -> tuple[str, int]:
    hasher, size = hashlib.sha256(), 0
    for chunk in response.iter_content(MIB):
        hasher.update(chunk)
        size += len(chunk)
    return f"sha256:{hasher.hexdigest()}", size


def upload_path(client: RegistryClient, response: requests.Response) -> tuple[str, str]:
    """The next request's path and the upload id, from a 202's Location."""
    path = client.location(response)
    return path, path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[1]


def patch(client: RegistryClient, upload: str, data: bytes, offset: int) -> str:
    response = client.request(
        "PATCH", upload, data=data, headers={"Content-Range": f"{offset}-{offset + len(data) - 1}"}
    )
    assert response.status_code == 202, response.text
    assert response.headers["Range"] == f"0-{offset + len(data) - 1}"
    return client.location(response)


def test_pushed_through_one_pulled_through_the_other(replicas: Replicas, repository: str) -> None:
    a, b = replicas.client(replicas.a), replicas.client(replicas.b)
    image = a.push_image(repository, "v1", layers=3, seed=uuid.uuid4().hex)
    # and a layer of several parts (plus a tail copied in at commit), chunked through A
    big = os.urandom(2 * PART + 12_345)
    upload = a.start_upload(repository)
    upload = patch(a, upload, big[: PART + 99], 0)
    done = a.request("PUT", upload, params={"digest": digest_of(big)}, data=big[PART + 99 :])
    assert done.status_code == 201, done.text

    assert_manifest_served(b, repository, image, "v1")
    for blob in (image.config, *image.layers, big):
        response = b.request("GET", f"/v2/{repository}/blobs/{digest_of(blob)}", stream=True)
        assert response.status_code == 200
        assert stream_digest(response) == (digest_of(blob), len(blob))
    ranged = b.request(
        "GET", f"/v2/{repository}/blobs/{digest_of(big)}", headers={"Range": f"bytes={PART - 5}-{PART + 5}"}
    )
    assert ranged.status_code == 206
    assert ranged.content == big[PART - 5 : PART + 6]

    # the replicas share the signing keys (in neither data dir): a bearer token from A is good on B
    assert not any((gateway.data_dir / "keys").exists() for gateway in replicas.gateways)
    token = a.request("GET", "/token", params={"scope": f"repository:{repository}:pull"})
    assert token.status_code == 200, token.text
    bearer = RegistryClient(replicas.b.url, auth=None)
    headers = {"Authorization": f"Bearer {token.json()['token']}", "Accept": OCI_MANIFEST}
    assert bearer.request("GET", f"/v2/{repository}/manifests/v1", headers=headers).content == image.manifest


# --- real clients ----------------------------------------------------------------------------


def _tar(path: str, payload: bytes) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        member = tarfile.TarInfo(path)
        member.size, member.mode = len(payload), 0o644
        tar.addfile(member, io.BytesIO(payload))
    return out.getvalue()


def marker_image(layout: Path, tag: str, marker: bytes) -> LayoutImage:
    """An OCI layout of one image: two tar+gzip layers of random bytes and one of `marker` lines,
    more than a part, in which the marker lies verbatim (compressed, it would prove nothing about
    encryption)."""
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')

    def put(content: bytes, media_type: str) -> Descriptor:
        (blobs / sha256_digest(content).removeprefix("sha256:")).write_bytes(content)
        return Descriptor(media_type, sha256_digest(content), len(content))

    tars = [_tar(f"random-{n}.bin", os.urandom(size)) for n, size in enumerate((MIB, 3 * MIB))]
    tars.append(_tar("marker.txt", (marker + b"\n") * ((PART + 3 * MIB) // (len(marker) + 1))))
    # gzip level 0 stores the tar verbatim (clients keep gzip layers as they are, where skopeo
    # would compress a plain tar layer on push and change its digest)
    layers = [
        put(gzip.compress(t, compresslevel=level, mtime=0), OCI_LAYER_GZIP)
        for t, level in zip(tars, (1, 1, 0), strict=True)
    ]
    assert marker in (blobs / layers[2].digest.removeprefix("sha256:")).read_bytes()
    config = put(
        json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [sha256_digest(t) for t in tars]},
            }
        ).encode(),
        OCI_CONFIG,
    )
    manifest = put(
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": config.to_json(),
                "layers": [layer.to_json() for layer in layers],
            }
        ).encode(),
        OCI_MANIFEST,
    )
    index = {"schemaVersion": 2, "manifests": [{**manifest.to_json(), "annotations": {REF_NAME: tag}}]}
    (layout / "index.json").write_text(json.dumps(index))
    return LayoutImage(layout, tag, manifest, (Manifest(manifest, "amd64", config, tuple(layers)),))


@pytest.mark.e2e
def test_skopeo_and_ctr_round_trip_and_no_plaintext_at_rest(
    replicas: Replicas, clients: Clients, tmp_path: Path
) -> None:
    marker = f"OCIGATE-HA-PLAINTEXT-MARKER-{uuid.uuid4().hex}".encode()
    image = marker_image(tmp_path / "src", "v1", marker)
    a, b = replicas.a.hostport, replicas.b.hostport

    # skopeo: an OCI layout → A, then B → another OCI layout, every digest kept
    clients.skopeo(
        "copy", "--dest-tls-verify=false", "--dest-creds", CREDS, image.oci_ref, f"docker://{a}/ha/skopeo:v1"
    )
    pulled = tmp_path / "pulled"
    clients.skopeo(
        "copy",
        "--src-tls-verify=false",
        "--src-creds",
        CREDS,
        f"docker://{b}/ha/skopeo:v1",
        f"oci:{pulled}:v1",
    )
    assert tagged_descriptor(pulled, "v1") == image.descriptor
    assert blob_digests(pulled) == image.all_digests

    # ctr: containerd's content store → A (monolithic PUTs), then B → a fresh namespace (which
    # downloads every blob and unpacks the layers against the config's diff_ids)
    archive = tmp_path / "image.tar"
    with tarfile.open(archive, "w") as tar:
        for name in ("oci-layout", "index.json", "blobs"):
            tar.add(image.layout / name, arcname=name)
    clients.ctr("ha-push", "images", "import", "--no-unpack", "--base-name", f"{a}/ha/ctr", archive)
    clients.ctr("ha-push", "images", "push", "--plain-http", f"{a}/ha/ctr:v1")
    clients.ctr("ha-pull", "images", "pull", "--plain-http", f"{b}/ha/ctr:v1")
    assert clients.ctr_image_digest("ha-pull", f"{b}/ha/ctr:v1") == image.digest
    for digest in image.all_digests:
        local = image.layout / "blobs" / "sha256" / digest.removeprefix("sha256:")
        assert clients.content("ha-pull", digest) == local.read_bytes(), digest

    # at rest: the RADOS objects behind the bucket. The control: the same marker in an object
    # written without SSE is found by the very same scan.
    control = marker * 100
    s3_client(replicas.s3).put_object(Bucket=replicas.bucket, Key="control/plaintext", Body=control)
    objects = rados_objects(replicas.s3, replicas.bucket, marker, tmp_path / "rados")
    assert [o.name.rsplit("_", 1)[1] for o in objects if o.holds_marker] == ["control/plaintext"]
    stored = sum(o.size for o in objects)
    pushed = sum(blob.size for blob in image.manifests[0].blobs)
    assert stored >= pushed + len(control), f"{stored} raw bytes in RADOS for {pushed} pushed"


# --- a replica killed mid-upload --------------------------------------------------------------

UPLOAD_SIZE = 200 * 1000 * 1000 + 7
PATCH_SIZES = (8 * MIB, 8 * MIB + 1, 8 * MIB - 4099, 3_333_333, 8 * MIB)
IN_FLIGHT = PART + 4 * MIB  # enough for A to store at least one part of it before it dies


def stored_parts(s3: Any, bucket: str, upload_id: str) -> int:
    """How many parts the store holds for the upload's multipart upload (whatever the session says)."""
    uploads = s3.list_multipart_uploads(Bucket=bucket, Prefix=f"blobs/{upload_id}").get("Uploads", [])
    assert len(uploads) == 1, uploads
    return len(s3.list_parts(Bucket=bucket, Key=uploads[0]["Key"], UploadId=uploads[0]["UploadId"])["Parts"])


def test_upload_goes_on_on_the_other_replica_after_kill_9(replicas: Replicas, repository: str) -> None:
    a, b = replicas.client(replicas.a), replicas.client(replicas.b)
    s3 = s3_client(replicas.s3)
    content = os.urandom(UPLOAD_SIZE)
    digest = digest_of(content)
    sizes = cycle(PATCH_SIZES)
    upload, upload_id = upload_path(a, a.request("POST", f"/v2/{repository}/blobs/uploads/"))
    offset = 0
    while offset < UPLOAD_SIZE // 2:
        size = next(sizes)
        upload = patch(a, upload, content[offset : offset + size], offset)
        offset += size
    parts_before = stored_parts(s3, replicas.bucket, upload_id)

    def in_flight() -> Iterator[bytes]:
        """A chunked PATCH body that kills A once A has stored a part of it."""
        for start in range(offset, offset + IN_FLIGHT, MIB):
            yield content[start : start + MIB]
        deadline = time.monotonic() + 60
        while stored_parts(s3, replicas.bucket, upload_id) == parts_before:
            assert time.monotonic() < deadline, "A stored no part of the PATCH in flight"
            time.sleep(0.05)
        replicas.a.kill()
        yield content[offset + IN_FLIGHT : offset + IN_FLIGHT + MIB]

    try:
        with pytest.raises(requests.ConnectionError):
            a.request("PATCH", upload, data=in_flight())
        # B knows where the upload stands: the PATCH in flight counts for nothing, even though
        # the store holds a part of it that the session does not name
        status = b.request("GET", upload)
        assert status.status_code == 204, status.text
        assert status.headers["Range"] == f"0-{offset - 1}"
        assert stored_parts(s3, replicas.bucket, upload_id) > parts_before
        while UPLOAD_SIZE - offset > PATCH_SIZES[0]:
            size = next(sizes)
            upload = patch(b, upload, content[offset : offset + size], offset)
            offset += size
        done = b.request("PUT", upload, params={"digest": digest}, data=content[offset:])
        assert done.status_code == 201, done.text
        assert done.headers["Docker-Content-Digest"] == digest

        pulled = b.request("GET", f"/v2/{repository}/blobs/{digest}", stream=True)
        assert pulled.status_code == 200
        assert stream_digest(pulled) == (digest, UPLOAD_SIZE)
        # nothing of the upload is left staged: no multipart upload, no tail objects
        assert not s3.list_multipart_uploads(Bucket=replicas.bucket, Prefix=f"blobs/{upload_id}").get(
            "Uploads"
        )
        listed = s3.list_objects_v2(Bucket=replicas.bucket, Prefix=f"blobs/{upload_id}/")
        assert listed.get("KeyCount", 0) == 0, listed.get("Contents")
    finally:
        if replicas.a.process is not None and replicas.a.process.poll() is not None:
            replicas.a.start()  # on its port again, for the tests after this one
    head = a.request("HEAD", f"/v2/{repository}/blobs/{digest}")
    assert head.status_code == 200
    assert head.headers["Content-Length"] == str(UPLOAD_SIZE)


# --- the store goes down mid-push ---------------------------------------------------------------


def assert_quick_503(started: float, response: requests.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["errors"][0]["code"] == "UNAVAILABLE"
    assert time.monotonic() - started < QUICK


def retry_while_unavailable(send: Callable[[], requests.Response], seconds: float = 20) -> requests.Response:
    """What a client does with a 503: try again a little later."""
    deadline = time.monotonic() + seconds
    while (response := send()).status_code == 503 and time.monotonic() < deadline:
        time.sleep(0.5)
    return response


@pytest.fixture
def outage_replicas(
    tmp_path: Path, ceph_s3: S3Service, postgres_server: PostgresServer, redis_server: RedisServer
) -> Iterator[tuple[Replicas, RadosGateway]]:
    """Two replicas on a radosgw of their own (of the session's Ceph), which the test stops."""
    rgw = RadosGateway(ceph_s3, tmp_path / "rgw")
    database = postgres_server.create_database()
    redis_url = redis_server.url.rpartition("/")[0] + f"/{REDIS_DB + 1}"
    with redis.Redis.from_url(redis_url) as cache:
        cache.flushdb()
    try:
        pair = start_replicas(rgw.service, tmp_path / "replicas", database, redis_url)
        try:
            yield pair, rgw
        finally:
            pair.stop()  # its few objects stay: purging a bucket with an open multipart upload took 20 s
    finally:
        rgw.stop()
        postgres_server.drop_database(database)


def test_store_down_mid_push_is_a_quick_503_and_leaves_nothing(
    outage_replicas: tuple[Replicas, RadosGateway],
) -> None:
    replicas, rgw = outage_replicas
    a, b = replicas.client(replicas.a), replicas.client(replicas.b)
    repository = "outage/app"
    config = b'{"architecture":"amd64","os":"linux"}'
    before = os.urandom(MIB)  # committed before the outage: must survive it
    layer = os.urandom(PART + 5 * MIB + 3)  # the layer being pushed when the store goes down
    config_digest = a.push_blob(repository, config)
    before_digest = a.push_blob(repository, before)
    layer_digest = digest_of(layer)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": layer_digest, "size": len(layer)}],
        }
    ).encode()
    upload = a.start_upload(repository)
    upload = patch(a, upload, layer[: 10 * MIB], 0)  # a 10 MiB tail object in the store

    rgw.kill()
    started = time.monotonic()  # the next PATCH reads the tail back, then fills a part
    assert_quick_503(started, a.request("PATCH", upload, data=layer[10 * MIB :]))
    started = time.monotonic()  # the other replica, the same upload
    assert_quick_503(
        started, b.request("PUT", upload, params={"digest": layer_digest}, data=layer[10 * MIB :])
    )
    started = time.monotonic()  # a monolithic push
    response = b.request(
        "POST", f"/v2/{repository}/blobs/uploads/", params={"digest": layer_digest}, data=layer
    )
    assert_quick_503(started, response)
    # a client that pushes the manifest anyway gets no tag: its layer is not there
    response = a.request(
        "PUT", f"/v2/{repository}/manifests/v1", data=manifest, headers={"Content-Type": OCI_MANIFEST}
    )
    assert response.status_code in (400, 404), response.text
    assert response.json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"

    def assert_nothing_appeared() -> None:
        for client in (a, b):
            assert client.request("HEAD", f"/v2/{repository}/blobs/{layer_digest}").status_code == 404
            assert client.request("HEAD", f"/v2/{repository}/manifests/v1").status_code == 404
            assert client.request("GET", f"/v2/{repository}/tags/list").json().get("tags") in (None, [])

    assert_nothing_appeared()  # as the metadata has it, with the store down
    rgw.start()
    assert_nothing_appeared()
    for client in (a, b):  # nothing committed before the outage was lost
        # 503s (with the circuit breaker's cooldown) until the replica sees the store is back
        get = partial(client.request, "GET", f"/v2/{repository}/blobs/{before_digest}")
        response = retry_while_unavailable(get)
        assert response.content == before
    # the upload resumes where it stood before the outage, and finishes
    status = b.request("GET", upload)
    assert status.headers["Range"] == f"0-{10 * MIB - 1}"
    done = b.request("PUT", upload, params={"digest": layer_digest}, data=layer[10 * MIB :])
    assert done.status_code == 201, done.text
    b.push_manifest(repository, "v1", manifest)
    assert a.request("GET", f"/v2/{repository}/blobs/{layer_digest}").content == layer
