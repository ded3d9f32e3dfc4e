"""The image deploy/image/build.sh makes (buildah on a debootstrapped Debian root, building
deploy/image/Dockerfile): pushed into a running ocigate with skopeo and pulled back byte for byte,
then pulled by podman and run as its own user on a read-only root filesystem.

The build is the session's one (image_build.py), shared with the operator walkthrough.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.images import make_image, sha256_digest
from tests.servers import ADMIN_PASSWORD, ADMIN_USER, Gateway, free_port

from .containers import ULIMITS, Storage, sha256_file
from .image_build import BUILT, VERSION

ROOT = Path(__file__).resolve().parents[2]
UID = "10001"
PASSWORD_LINE = re.compile(r"created account user 'admin' with password: (\S+)")
# every extension module and lazily imported backend the image ships must load (stripped .so files)
IMPORT_ALL = (
    "import asyncpg, redis.asyncio, aiobotocore.session, botocore.session, uvloop, aiohttp, orjson, "
    "xxhash, cryptography.hazmat.primitives.ciphers.aead, ocigate.gateway.server; "
    "botocore.session.get_session().create_client('s3', region_name='us-east-1', "
    "aws_access_key_id='k', aws_secret_access_key='s')"
)


@dataclass(frozen=True)
class PushedImage:
    reference: str  # host:port/repository:tag in the test gateway
    digest: str
    manifest: dict[str, Any]
    config: dict[str, Any]


@pytest.fixture(scope="module")
def pushed(build_storage: Storage, gateway: Gateway, tmp_path_factory: pytest.TempPathFactory) -> PushedImage:
    """The image pushed into the test gateway with skopeo and pulled back into a directory."""
    reference = f"{gateway.hostport}/deploy/ocigate:test"
    digest_file = tmp_path_factory.mktemp("digest") / "pushed"
    creds = f"--dest-creds={ADMIN_USER}:{ADMIN_PASSWORD}"
    build_storage.skopeo(
        "copy", "--dest-tls-verify=false", creds, "--digestfile", digest_file,
        build_storage.reference(BUILT), f"docker://{reference}",
    )  # fmt: skip
    digest = digest_file.read_text().strip()
    pulled = tmp_path_factory.mktemp("pulled")
    build_storage.skopeo(
        "copy", "--src-tls-verify=false", f"--src-creds={ADMIN_USER}:{ADMIN_PASSWORD}",
        f"docker://{reference}", f"dir:{pulled}",
    )  # fmt: skip
    assert sha256_file(pulled / "manifest.json") == digest
    manifest = json.loads((pulled / "manifest.json").read_text())
    for blob in (manifest["config"], *manifest["layers"]):
        path = pulled / blob["digest"].removeprefix("sha256:")
        assert sha256_file(path) == blob["digest"]
        assert path.stat().st_size == blob["size"]
    config = json.loads((pulled / manifest["config"]["digest"].removeprefix("sha256:")).read_text())
    return PushedImage(reference, digest, manifest, config)


def test_the_pushed_image_comes_back_byte_for_byte(pushed: PushedImage, gateway: Gateway) -> None:
    served = requests.get(
        f"{gateway.url}/v2/deploy/ocigate/manifests/test",
        headers={"Accept": pushed.manifest["mediaType"]},
        auth=(ADMIN_USER, ADMIN_PASSWORD),
        timeout=30,
    )
    assert served.status_code == 200
    assert served.headers["Docker-Content-Digest"] == pushed.digest
    # docker's format: the OCI image format has no HEALTHCHECK
    assert pushed.manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    compressed = sum(layer["size"] for layer in pushed.manifest["layers"])
    assert compressed < 100_000_000, f"the image grew to {compressed / 1e6:.0f} MB compressed"


def test_the_image_runs_ocigate_as_a_fixed_user_with_its_data_in_a_volume(pushed: PushedImage) -> None:
    config = pushed.config["config"]
    assert config["User"] == f"{UID}:{UID}"
    assert config["Entrypoint"] == ["ocigate", "serve"]
    assert list(config["Volumes"]) == ["/data"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["OCIGATE_DATA_DIR"] == "/data"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert config["Healthcheck"]["Test"] == ["CMD", "ocigate", "healthcheck"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == VERSION
    revision = subprocess.run(
        ["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert labels["org.opencontainers.image.revision"] == revision
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", labels["org.opencontainers.image.created"])


@dataclass
class Container:
    storage: Storage
    name: str
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        result = self.storage.podman("logs", self.name)
        return result.stdout + result.stderr

    def wait_until_serving(self) -> None:
        """/v2/ answers 401 (auth is on); fails with the logs if the container stops first."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                status = requests.get(f"{self.url}/v2/", timeout=2).status_code
                assert status == 401, f"/v2/ answered {status} without credentials"
                return
            except requests.ConnectionError:
                state = self.storage.podman("inspect", "--format", "{{.State.Status}}", self.name).stdout
                assert state.strip() == "running", f"container {state.strip()}:\n{self.logs()}"
                time.sleep(0.2)
        raise AssertionError(f"the container did not serve in 120 s:\n{self.logs()}")

    def exec(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.storage.podman("exec", self.name, *argv, check=check)


@pytest.fixture(scope="module")
def runtime(pushed: PushedImage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storage]:
    """A podman storage of its own, holding the image as podman pulled it from the gateway."""
    storage = Storage(tmp_path_factory.mktemp("podman"))
    storage.podman("pull", "--tls-verify=false", f"--creds={ADMIN_USER}:{ADMIN_PASSWORD}", pushed.reference)
    yield storage
    storage.remove()


def start(runtime: Storage, pushed: PushedImage, name: str, *options: str) -> Container:
    """Run the image as it is (its user, entrypoint and volume) on the host's network."""
    port = free_port()
    runtime.podman(
        "run", "--detach", "--name", name, "--network", "host", *ULIMITS,
        "--env", f"OCIGATE_LISTEN=127.0.0.1:{port}", "--volume", f"{name}-data:/data",
        *options, pushed.reference,
    )  # fmt: skip
    container = Container(runtime, name, port)
    container.wait_until_serving()
    return container


def admin_password(container: Container) -> str:
    printed = PASSWORD_LINE.findall(container.logs())
    assert len(printed) == 1, f"the admin password was printed {len(printed)} times:\n{container.logs()}"
    return printed[0]


def push_and_pull(container: Container, password: str, tmp_path: Path) -> None:
    """A small push through the containerised registry (uploads staged in /data), pulled back."""
    image = make_image(tmp_path / "layout", "v1", layers=2, layer_size=256 << 10)
    reference = f"127.0.0.1:{container.port}/smoke/app:v1"
    creds = f"{ADMIN_USER}:{password}"
    container.storage.skopeo(
        "copy", "--dest-tls-verify=false", f"--dest-creds={creds}", image.oci_ref, f"docker://{reference}"
    )
    raw = container.storage.skopeo(
        "inspect", "--raw", "--tls-verify=false", f"--creds={creds}", f"docker://{reference}"
    ).stdout
    assert sha256_digest(raw.encode()) == image.digest


def test_podman_pulled_the_pushed_digest(runtime: Storage, pushed: PushedImage) -> None:
    digest = runtime.podman("image", "inspect", "--format", "{{.Digest}}", pushed.reference).stdout
    assert digest.strip() == pushed.digest


def test_it_serves_on_a_read_only_root_as_its_own_user(
    runtime: Storage, pushed: PushedImage, tmp_path: Path
) -> None:
    container = start(runtime, pushed, "readonly", "--read-only")
    password = admin_password(container)
    assert requests.get(f"{container.url}/v2/", auth=(ADMIN_USER, password), timeout=10).status_code == 200
    assert container.exec("id", "-u").stdout.strip() == UID
    read_only = container.exec(
        "python3", "-c", "import os; print(bool(os.statvfs('/').f_flag & os.ST_RDONLY))"
    )
    assert read_only.stdout.strip() == "True"
    container.exec("python3", "-c", IMPORT_ALL)
    runtime.podman("healthcheck", "run", container.name)  # the image's HEALTHCHECK
    push_and_pull(container, password, tmp_path)

    runtime.podman("restart", "--time", "30", container.name)
    container.wait_until_serving()
    assert admin_password(container) == password  # printed once: the first start only
    assert requests.get(f"{container.url}/v2/", auth=(ADMIN_USER, password), timeout=10).status_code == 200
    runtime.podman("rm", "--force", "--time", "30", container.name)


def test_nothing_is_written_outside_data_and_tmp(
    runtime: Storage, pushed: PushedImage, tmp_path: Path
) -> None:
    """As root on a writable root filesystem, with Python free to write bytecode, nothing stops
    a write: the container's changes to the image's files show every write the server made
    outside its volume. There are none but the mount points podman adds in /etc."""
    container = start(runtime, pushed, "observed", "--user", "0:0", "--env", "PYTHONDONTWRITEBYTECODE=")
    push_and_pull(container, admin_password(container), tmp_path)
    changes = json.loads(runtime.podman("diff", "--format", "json", container.name).stdout or "{}")
    paths = sorted({path for kind in changes.values() for path in kind})
    outside = [path for path in paths if path != "/etc" and not re.match(r"/tmp(/|$)", path)]
    assert outside == [], "\n".join(outside)
    runtime.podman("rm", "--force", "--time", "30", container.name)
