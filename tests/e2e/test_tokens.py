"""Every client logs in and works with a robot token (within its scopes only), and podman with
the account user on both registries of the account."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ..servers import ADMIN_PASSWORD, ADMIN_USER, Gateway, ocigate
from .conftest import Clients, Registries
from .images import make_image, oci_archive, sha256_digest

pytestmark = pytest.mark.e2e

NO_TLS = "--tls-verify=false"


def robot_token(gateway: Gateway, registry: str, name: str, scope: str) -> str:
    output = ocigate(
        "token", "create", name, "--registry", registry, f"--scope={scope}", data_dir=gateway.data_dir
    )
    match = re.search(r"password \(shown once\): (\S+)", output)
    assert match is not None, output
    return match.group(1)


def served_digest(clients: Clients, ref: str) -> str:
    raw = clients.skopeo(
        "inspect", "--raw", NO_TLS, "--creds", f"{ADMIN_USER}:{ADMIN_PASSWORD}", f"docker://{ref}"
    )
    return sha256_digest(raw.stdout.encode())


def test_skopeo_with_robot_tokens(
    clients: Clients, gateway: Gateway, registries: Registries, repository: str, tmp_path: Path
) -> None:
    pusher = robot_token(gateway, "alpha", "skopeo-push", "test/*:pull,push")
    reader = robot_token(gateway, "alpha", "skopeo-read", "test/*:pull")
    image = make_image(tmp_path / "src", "v1", layers=2)
    ref = f"{registries.alpha}/{repository}:v1"
    clients.skopeo(
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        f"skopeo-push:{pusher}",
        image.oci_ref,
        f"docker://{ref}",
    )
    clients.skopeo(
        "copy",
        "--src-tls-verify=false",
        "--src-creds",
        f"skopeo-read:{reader}",
        f"docker://{ref}",
        f"oci:{tmp_path / 'pulled'}:v1",
    )
    assert served_digest(clients, ref) == image.digest
    denied = clients.skopeo(
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        f"skopeo-read:{reader}",
        image.oci_ref,
        f"docker://{registries.alpha}/{repository}:v2",
        check=False,
    )
    assert denied.returncode != 0
    # the alpha token is nothing on beta
    elsewhere = clients.skopeo(
        "inspect",
        "--raw",
        NO_TLS,
        "--creds",
        f"skopeo-read:{reader}",
        f"docker://{registries.beta}/{repository}:v1",
        check=False,
    )
    assert elsewhere.returncode != 0
    assert "unauthorized" in elsewhere.stderr.lower() or "authentication required" in elsewhere.stderr.lower()


def test_ctr_with_a_robot_token(
    clients: Clients,
    gateway: Gateway,
    registries: Registries,
    repository: str,
    namespace: str,
    tmp_path: Path,
) -> None:
    password = robot_token(gateway, "beta", "ctr-push", "test/*:pull,push")
    image = make_image(tmp_path / "src", "v1")
    ref = f"{registries.beta}/{repository}:v1"
    name = ref.rsplit(":", 1)[0]
    clients.ctr(
        f"{namespace}-a",
        "images",
        "import",
        "--no-unpack",
        "--base-name",
        name,
        oci_archive(image, tmp_path / "i.tar"),
    )
    clients.ctr(f"{namespace}-a", "images", "push", "--plain-http", "--user", f"ctr-push:{password}", ref)
    clients.ctr(f"{namespace}-b", "images", "pull", "--plain-http", "--user", f"ctr-push:{password}", ref)
    assert served_digest(clients, ref) == image.digest


def test_docker_login_with_a_robot_token(
    clients: Clients, gateway: Gateway, registries: Registries, repository: str, tmp_path: Path
) -> None:
    password = robot_token(gateway, "alpha", "docker-ci", "test/*:pull,push")
    image = make_image(tmp_path / "src", "v1")
    source = f"{registries.alpha}/{repository}:v1"
    clients.skopeo("copy", "--dest-tls-verify=false", image.oci_ref, f"docker://{source}")
    config = tmp_path / "docker-config"  # its own login, not the session's admin one
    clients.docker(
        "--config", config, "login", "-u", "docker-ci", "--password-stdin", registries.alpha, stdin=password
    )
    clients.docker("--config", config, "pull", source)
    target = f"{registries.alpha}/{repository}-copy:v1"
    clients.docker("--config", config, "tag", source, target)
    clients.docker("--config", config, "push", target)
    clients.docker("--config", config, "rmi", source, target)
    clients.docker("--config", config, "pull", target)
    clients.docker("--config", config, "rmi", target)
    wrong = clients.docker(
        "--config",
        config,
        "login",
        "-u",
        "docker-ci",
        "--password-stdin",
        registries.alpha,
        stdin="wrong-password",
        check=False,
    )
    assert wrong.returncode != 0


def test_podman_login_push_pull_on_both_registries(
    clients: Clients, gateway: Gateway, registries: Registries, repository: str, tmp_path: Path
) -> None:
    image = make_image(tmp_path / "src", "v1")
    source = f"{registries.alpha}/{repository}:v1"
    clients.skopeo("copy", "--dest-tls-verify=false", image.oci_ref, f"docker://{source}")
    auth = tmp_path / "podman-auth.json"
    for host in (registries.alpha, registries.beta):  # one account user, two registries
        clients.podman("login", NO_TLS, "-u", ADMIN_USER, "-p", ADMIN_PASSWORD, host, auth_file=auth)
    clients.podman("pull", NO_TLS, source, auth_file=auth)
    target = f"{registries.beta}/{repository}:v1"
    clients.podman("tag", source, target, auth_file=auth)
    clients.podman("push", NO_TLS, target, auth_file=auth)
    clients.podman("rmi", "-f", source, target, auth_file=auth)
    clients.podman("pull", NO_TLS, target, auth_file=auth)
    # podman recompresses layers on push, so compare what beta serves with what podman pushed
    pushed = clients.skopeo(
        "inspect", "--raw", NO_TLS, "--creds", f"{ADMIN_USER}:{ADMIN_PASSWORD}", f"docker://{target}"
    ).stdout
    assert '"schemaVersion": 2' in pushed or '"schemaVersion":2' in pushed
    robot = robot_token(gateway, "beta", "podman-ci", "test/*:pull")
    robot_auth = tmp_path / "robot-auth.json"
    clients.podman("login", NO_TLS, "-u", "podman-ci", "-p", robot, registries.beta, auth_file=robot_auth)
    clients.podman("rmi", "-f", target, auth_file=robot_auth)
    clients.podman("pull", NO_TLS, target, auth_file=robot_auth)
    refused = clients.podman(
        "push", NO_TLS, target, f"{registries.beta}/{repository}:v2", check=False, auth_file=robot_auth
    )
    assert refused.returncode != 0
