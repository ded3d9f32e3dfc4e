"""S3 stores for the tests: a throwaway Ceph (mon + osd + radosgw, `ceph.sh`) and `moto_server`,
each started once per session on free loopback ports, data under a temp dir, and stopped by
the fixture (only the processes they started)."""

from __future__ import annotations

import base64
import dataclasses
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ocigate.storage.blobs.s3 import S3BlobDriver
from ocigate.storage.config import MIB, StorageConfig
from tests.harness.ceph import CephCluster
from tests.harness.processes import ServiceError, free_port, http_status, kill, stop, wait_until

# how each `blob_driver` backend encrypts: (fixture of its store, OCIGATE_S3_SSE)
BACKENDS = {
    "s3-ceph-kms": ("ceph_s3", "aws:kms"),
    "s3-ceph-sse-c": ("ceph_s3", "sse-c"),
    "s3-moto": ("moto_s3", "AES256"),  # moto ignores SSE-C (the startup check refuses it)
}


@dataclass(frozen=True)
class S3Service:
    endpoint_url: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    ceph_conf: Path | None = None  # for `rados`: the raw objects behind the S3 API
    kms_key_id: str | None = None
    start_seconds: float = 0.0
    # an SSE-C key per store, kept out of reprs (pytest prints fixture values on errors)
    sse_c_key: str = field(default_factory=lambda: base64.b64encode(os.urandom(32)).decode(), repr=False)

    def credentials(self) -> dict[str, str]:
        """The AWS_* variables the driver's default credential chain reads."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
        }

    def settings(self, sse: str, bucket: str, **extra: str) -> dict[str, str]:
        """Environment of an `ocigate serve` storing blobs here."""
        env = {
            **self.credentials(),
            "OCIGATE_BLOB_STORE": "s3",
            "OCIGATE_S3_ENDPOINT_URL": self.endpoint_url,
            "OCIGATE_S3_BUCKET": bucket,
            "OCIGATE_S3_ADDRESSING_STYLE": "path",
            "OCIGATE_S3_SSE": sse,
        }
        if sse == "aws:kms" and self.kms_key_id:
            env["OCIGATE_S3_SSE_KMS_KEY_ID"] = self.kms_key_id
        if sse == "sse-c":
            env["OCIGATE_S3_SSE_C_KEY"] = self.sse_c_key
        return {**env, **extra}

    def config(self, sse: str, bucket: str, root: Path, **extra: object) -> StorageConfig:
        """Blobs in `bucket` here; `extra` overrides, S3 ones by their flat names (`s3_timeout`)."""
        s3: dict[str, object] = {
            "endpoint_url": self.endpoint_url,
            "bucket": bucket,
            "addressing_style": "path",
            "sse": sse,
            "part_size": 5 * MIB,  # the smallest S3 allows: tests cross part boundaries cheaply
        }
        if sse == "aws:kms":
            s3["sse_kms_key_id"] = self.kms_key_id
        if sse == "sse-c":
            s3["sse_c_key"] = self.sse_c_key
        s3 |= {name.removeprefix("s3_"): value for name, value in extra.items() if name.startswith("s3_")}
        rest = {name: value for name, value in extra.items() if not name.startswith("s3_")}
        return StorageConfig.model_validate({"data_dir": root, "blob_store": "s3", "s3": s3, **rest})

    async def open_driver(
        self, monkeypatch: pytest.MonkeyPatch, sse: str, root: Path, **extra: object
    ) -> S3BlobDriver:
        """A driver on a fresh bucket (tests reuse upload ids)."""
        for name, value in self.credentials().items():
            monkeypatch.setenv(name, value)
        return await S3BlobDriver.open(self.config(sse, new_bucket(), root, **extra).s3)


def new_bucket() -> str:
    return f"t-{uuid.uuid4().hex[:24]}"


class Ceph(CephCluster):
    """One instance of ceph.sh under `workdir`, as an `S3Service`."""

    def start(self) -> S3Service:
        exported = self.up()
        return S3Service(
            endpoint_url=exported["S3_ENDPOINT_URL"],
            access_key=exported["AWS_ACCESS_KEY_ID"],
            secret_key=exported["AWS_SECRET_ACCESS_KEY"],
            region=exported["AWS_DEFAULT_REGION"],
            ceph_conf=Path(exported["CEPH_CONF"]),
            kms_key_id=exported["CEPH_KMS_KEY_ID"],
            start_seconds=float(exported["CEPH_START_SECONDS"]),
        )


class RadosGateway:
    """One more radosgw of a running Ceph, on a port of its own, for a test to stop and start
    again (by its PID): the cluster behind it, and its data, stay up."""

    def __init__(self, s3: S3Service, workdir: Path) -> None:
        assert s3.ceph_conf is not None
        workdir.mkdir(parents=True, exist_ok=True)
        self.name = f"client.rgw.{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        text = s3.ceph_conf.read_text()
        # the first gateway's section (frontend, KMS keys) under this one's name and port
        text = text.replace("[client.rgw.a]", f"[{self.name}]").replace(
            f"endpoint=127.0.0.1:{s3.endpoint_url.rsplit(':', 1)[1]}", f"endpoint=127.0.0.1:{self.port}"
        )
        self.conf = workdir / "ceph.conf"
        self.conf.write_text(text)
        self.service = dataclasses.replace(s3, endpoint_url=f"http://127.0.0.1:{self.port}")
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["radosgw", "-c", str(self.conf), "-n", self.name, "-f"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = self.service.endpoint_url
        try:
            wait_until(lambda: http_status(url, 2) > 0, 90, f"radosgw {self.name}", self.process, 0.2)
        except ServiceError:
            self.stop()
            raise

    def stop(self) -> None:
        stop(self.process, grace=30)

    def kill(self) -> None:
        """kill -9, as a crash would."""
        kill(self.process)


class MotoServer:
    """`moto_server` (an in-memory S3) as a subprocess on a free port."""

    def __init__(self) -> None:
        self.port = free_port()
        binary = Path(sys.executable).with_name("moto_server")
        if not binary.exists():
            pytest.fail("moto_server is missing: bash deploy/install.sh test (installs moto[server])")
        self.process = subprocess.Popen(
            [str(binary), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        try:
            wait_until(
                lambda: http_status(self.url) > 0, 30, f"moto_server on port {self.port}", self.process, 0.1
            )
        except ServiceError:
            self.stop()
            raise

    def service(self) -> S3Service:
        return S3Service(self.url, "motoaccess", "motosecret")

    def stop(self) -> None:
        stop(self.process)


@pytest.fixture(scope="session")
def ceph_s3(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Service]:
    """Ceph RGW for the session (about 15 s to start with memstore; SSE-KMS key `testkey-1`)."""
    ceph = Ceph(tmp_path_factory.mktemp("ceph"))
    try:
        service = ceph.start()
        capture = request.config.pluginmanager.getplugin("capturemanager")
        with capture.global_and_fixture_disabled():
            print(f"\n[ceph up in {service.start_seconds:.1f} s]", end=" ", file=sys.stderr)
        yield service
    finally:
        ceph.down()


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[S3Service]:
    server = MotoServer()
    try:
        yield server.service()
    finally:
        server.stop()


async def open_backend(request: pytest.FixtureRequest, backend: str, root: Path) -> S3BlobDriver:
    """A driver of `backend` (a BACKENDS name) on a fresh bucket; its store starts on first use."""
    store, sse = BACKENDS[backend]
    service: S3Service = request.getfixturevalue(store)
    return await service.open_driver(request.getfixturevalue("monkeypatch"), sse, root)
