"""skopeo, podman, containerd's ctr and docker over HTTPS, verifying the gateway's certificate
against a private CA made here, given to each client its own way: a cert dir (skopeo, podman), a
hosts dir (ctr), /etc/docker/certs.d (docker).

Docker treats any registry in 127.0.0.0/8 as insecure (it would skip verification), so this
gateway listens on the machine's own non-loopback address under a name of its own; each client
is shown to refuse the certificate without the CA first, so verification is really on.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..harness.tls import PrivateCA
from ..servers import ADMIN_PASSWORD, ADMIN_USER, DOMAIN, Gateway, free_port, ocigate
from .addresses import machine_address, resolve
from .conftest import Clients
from .images import blob_digests, make_image, oci_archive, tagged_descriptor

pytestmark = pytest.mark.e2e

NAME = f"secure.{DOMAIN}"
CREDS = f"{ADMIN_USER}:{ADMIN_PASSWORD}"
UNTRUSTED = ("x509", "unknown authority")  # what each Go client says about an unknown CA


@dataclass(frozen=True)
class Secure:
    host: str  # name:port
    ca: PrivateCA
    cert_dir: Path  # ca.crt, for skopeo and podman
    hosts_dir: Path  # <host>/hosts.toml, for ctr


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secure]:
    root = tmp_path_factory.mktemp("tls-e2e")
    address = machine_address()
    resolve(NAME, address)
    ca = PrivateCA(root / "ca")
    files = ca.issue([NAME], serial=7001, into=root)
    data_dir = root / "data"
    ocigate("registry", "create", "secure", data_dir=data_dir)
    port = free_port()
    host = f"{NAME}:{port}"
    env = {"OCIGATE_TLS_CERT": str(files.cert), "OCIGATE_TLS_KEY": str(files.key)}
    gateway = Gateway(data_dir, env={**env, "OCIGATE_LISTEN": f"{address}:{port}"}, port=port)
    try:
        gateway.start(ready=lambda g: g.serving())
        cert_dir = root / "certs"
        cert_dir.mkdir()
        shutil.copy(ca.ca_file, cert_dir / "ca.crt")
        hosts_dir = root / "hosts"
        (hosts_dir / host).mkdir(parents=True)
        (hosts_dir / host / "hosts.toml").write_text(
            f'server = "https://{host}"\n\n[host."https://{host}"]\n  ca = "{ca.ca_file}"\n'
        )
        yield Secure(host, ca, cert_dir, hosts_dir)
    finally:
        gateway.stop()
        shutil.rmtree(Path("/etc/docker/certs.d") / host, ignore_errors=True)


def test_skopeo_and_podman_verify_with_a_cert_dir(
    clients: Clients, secure: Secure, repository: str, tmp_path: Path
) -> None:
    image = make_image(tmp_path / "src", "v1", layers=2, layer_size=2 << 20)
    ref = f"docker://{secure.host}/{repository}:v1"
    refused = clients.skopeo("copy", "--dest-creds", CREDS, image.oci_ref, ref, check=False)
    assert refused.returncode != 0
    assert any(word in refused.stderr for word in UNTRUSTED), refused.stderr

    verify = ("--dest-tls-verify=true", "--dest-cert-dir", str(secure.cert_dir))
    clients.skopeo("copy", *verify, "--dest-creds", CREDS, image.oci_ref, ref)
    pulled = tmp_path / "pulled"
    clients.skopeo(
        "copy",
        "--src-tls-verify=true",
        "--src-cert-dir",
        secure.cert_dir,
        "--src-creds",
        CREDS,
        ref,
        f"oci:{pulled}:v1",
    )
    assert tagged_descriptor(pulled, "v1") == image.descriptor
    assert blob_digests(pulled) == image.all_digests

    podman_ref = f"{secure.host}/{repository}:v1"
    auth = tmp_path / "podman-auth.json"
    auth.write_text('{"auths": {}}')
    flags = (
        "--tls-verify=true",
        "--cert-dir",
        str(secure.cert_dir),
        "--creds",
        CREDS,
        "--authfile",
        str(auth),
    )
    clients.podman("pull", *flags, podman_ref, auth_file=auth)
    clients.podman("tag", podman_ref, f"{secure.host}/{repository}:podman", auth_file=auth)
    clients.podman("push", *flags, f"{secure.host}/{repository}:podman", auth_file=auth)
    clients.skopeo(
        "inspect",
        "--tls-verify=true",
        "--cert-dir",
        secure.cert_dir,
        "--creds",
        CREDS,
        f"docker://{secure.host}/{repository}:podman",
    )


def test_ctr_verifies_with_a_hosts_dir(
    clients: Clients, secure: Secure, repository: str, namespace: str, tmp_path: Path
) -> None:
    image = make_image(tmp_path / "src", "v1", layers=2)
    ref = f"{secure.host}/{repository}:v1"
    pusher, puller = f"{namespace}-push", f"{namespace}-pull"
    archive = oci_archive(image, tmp_path / "image.tar")
    clients.ctr(pusher, "images", "import", "--no-unpack", "--base-name", ref.rsplit(":", 1)[0], archive)
    refused = clients.run(*clients._ctr_command(pusher), "images", "push", "--user", CREDS, ref, check=False)
    assert refused.returncode != 0
    assert any(word in refused.stderr for word in UNTRUSTED), refused.stderr

    clients.ctr(pusher, "images", "push", "--hosts-dir", secure.hosts_dir, ref)
    clients.ctr(puller, "images", "pull", "--hosts-dir", secure.hosts_dir, ref)
    assert clients.ctr_image_digest(puller, ref) == image.digest


def test_docker_verifies_with_certs_d(
    clients: Clients, secure: Secure, repository: str, tmp_path: Path
) -> None:
    image = make_image(tmp_path / "src", "v1", layers=2)
    login = ("login", "-u", ADMIN_USER, "--password-stdin", secure.host)
    refused = clients.docker(*login, stdin=ADMIN_PASSWORD, check=False)
    assert refused.returncode != 0
    assert any(word in refused.stderr for word in UNTRUSTED), refused.stderr

    certs_d = Path("/etc/docker/certs.d") / secure.host
    certs_d.mkdir(parents=True, exist_ok=True)
    shutil.copy(secure.ca.ca_file, certs_d / "ca.crt")
    clients.docker(*login, stdin=ADMIN_PASSWORD)
    source = f"{secure.host}/{repository}:v1"
    clients.skopeo(
        "copy", "--dest-cert-dir", secure.cert_dir, "--dest-creds", CREDS, image.oci_ref, f"docker://{source}"
    )
    clients.docker("pull", source)
    target = f"{secure.host}/{repository}:docker"
    clients.docker("tag", source, target)
    clients.docker("push", target)
    clients.docker("rmi", source, target)
    clients.docker("pull", target)
    clients.docker("rmi", target)
