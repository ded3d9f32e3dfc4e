"""Fixtures that drive real registry clients (skopeo, containerd's ctr, docker) against ocigate.

The clients come from tests/e2e/install-clients.sh; containerd and dockerd are private daemons
that tests/e2e/clients.sh starts for the session and stops afterwards. A missing client makes
the tests fail (never skip), saying what is missing and how to install it.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..servers import ADMIN_PASSWORD, ADMIN_USER, DOMAIN, Gateway

HERE = Path(__file__).parent
# Kept outside the repository; a short path, as unix socket paths are at most 107 bytes.
E2E_DIR = Path(os.environ.get("OCIGATE_E2E_DIR", "/var/tmp/ocigate-e2e"))
DOCKER_PKG = E2E_DIR / "docker-pkg"
DOCKER = DOCKER_PKG / "usr" / "bin" / "docker"
HOSTNAMES = (f"alpha.{DOMAIN}", f"beta.{DOMAIN}")
INSTALL_HINT = "run `bash tests/e2e/install-clients.sh` as root"


@dataclass(frozen=True)
class Clients:
    """Runs the clients against the session's private daemons, with private config dirs."""

    state_dir: Path

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            # No credentials or settings of the machine's user leak in.
            "DOCKER_CONFIG": str(self.state_dir / "docker-config"),
            "REGISTRY_AUTH_FILE": str(self.state_dir / "containers-auth.json"),
            # overlayfs is not available here; native is what clients.sh configures.
            "CONTAINERD_SNAPSHOTTER": "native",
        }

    def run(
        self,
        *args: str | Path,
        check: bool = True,
        stdin: str | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        command = [str(arg) for arg in args]
        result = subprocess.run(
            command,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            input=stdin,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"`{' '.join(command)}` exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def skopeo(self, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("skopeo", *args, check=check)

    def ctr(self, namespace: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
        if args[:2] in (("images", "push"), ("images", "pull")) and "--user" not in args:
            # ctr has no login: credentials go with each command (POST /token flow)
            args = (*args[:2], "--user", f"{ADMIN_USER}:{ADMIN_PASSWORD}", *args[2:])
        return self.run(*self._ctr_command(namespace), *args)

    def ctr_image_digest(self, namespace: str, name: str) -> str:
        """The digest containerd recorded for image NAME (`ctr images ls`: REF TYPE DIGEST …)."""
        for line in self.ctr(namespace, "images", "ls").stdout.splitlines()[1:]:
            fields = line.split()
            if fields[0] == name:
                return fields[2]
        raise AssertionError(f"{name} not in containerd namespace {namespace}")

    def content(self, namespace: str, digest: str) -> bytes:
        """The bytes of a blob in containerd's content store."""
        command = [*self._ctr_command(namespace), "content", "get", digest]
        return subprocess.run(command, env=self.env, capture_output=True, timeout=60, check=True).stdout

    def _ctr_command(self, namespace: str) -> list[str]:
        return ["ctr", "--address", str(self.state_dir / "containerd.sock"), "--namespace", namespace]

    def podman(
        self, *args: str | Path, auth_file: Path, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """podman with private storage (vfs: no overlay here) and the given auth file (podman
        refuses to log in where the session's skopeo login left an identity token)."""
        storage = self.state_dir / "podman"
        return self.run(
            "podman",
            "--root",
            storage / "root",
            "--runroot",
            storage / "run",
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "none",
            *args,
            check=check,
        )

    def docker(
        self, *args: str | Path, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return self.run(
            DOCKER, "-H", f"unix://{self.state_dir / 'docker.sock'}", *args, check=check, stdin=stdin
        )


def _missing_clients() -> list[str]:
    missing = [name for name in ("skopeo", "containerd", "ctr", "podman") if shutil.which(name) is None]
    missing += [str(path) for path in (DOCKER, DOCKER_PKG / "usr" / "sbin" / "dockerd") if not path.exists()]
    return missing


def _ensure_hostnames() -> None:
    """Make alpha/beta.ocigate.test resolve to 127.0.0.1 (skopeo, ctr and dockerd use the
    system resolver and /etc/hosts; `*.localhost` does not resolve here)."""
    unresolved = []
    for name in HOSTNAMES:
        try:
            socket.gethostbyname(name)
        except socket.gaierror:
            unresolved.append(name)
    if unresolved:
        try:
            with open("/etc/hosts", "a+") as hosts:
                hosts.seek(0)
                newline = "" if hosts.read().endswith("\n") else "\n"
                hosts.write(f"{newline}127.0.0.1 {' '.join(unresolved)}\n")
        except OSError as error:
            pytest.fail(f"cannot add {unresolved} to /etc/hosts ({error}): run as root")
    for name in HOSTNAMES:
        assert socket.gethostbyname(name) == "127.0.0.1", f"{name} does not resolve to 127.0.0.1"


@pytest.fixture(scope="session")
def clients() -> Iterator[Clients]:
    """skopeo, ctr and docker, with containerd and dockerd running for the session."""
    missing = _missing_clients()
    if missing:
        pytest.fail(f"e2e clients missing: {', '.join(missing)}; {INSTALL_HINT}")
    _ensure_hostnames()
    E2E_DIR.mkdir(parents=True, exist_ok=True)
    state_dir = Path(tempfile.mkdtemp(prefix="run-", dir=E2E_DIR))
    clients_sh = HERE / "clients.sh"
    # Docker allows plain HTTP to registries whose name resolves into 127.0.0.0/8 (its default
    # insecure CIDR; checked with docker 20.10 and alpha.ocigate.test:PORT), so no
    # insecure-registries entry is needed for the gateway's hostnames.
    up = subprocess.run(
        ["bash", clients_sh, "up", state_dir], capture_output=True, text=True, timeout=120, check=False
    )
    if up.returncode != 0:
        shutil.rmtree(state_dir, ignore_errors=True)
        pytest.fail(f"clients.sh up failed:\n{up.stdout}{up.stderr}")
    try:
        yield Clients(state_dir)
    finally:
        subprocess.run(["bash", clients_sh, "down", state_dir], timeout=120, check=True)
        shutil.rmtree(state_dir, ignore_errors=True)


@dataclass(frozen=True)
class Registries:
    """The two tenant registries of the session's one gateway, as clients name them."""

    alpha: str  # host:port
    beta: str


@pytest.fixture(scope="session")
def registries(gateway: Gateway, clients: Clients) -> Registries:
    """Both registries, with skopeo and docker logged in as the account user (one login per
    registry: the same account credentials are valid on all of the account's registries)."""
    found = Registries(f"{HOSTNAMES[0]}:{gateway.port}", f"{HOSTNAMES[1]}:{gateway.port}")
    for host in (found.alpha, found.beta):
        clients.skopeo("login", "--tls-verify=false", "-u", ADMIN_USER, "-p", ADMIN_PASSWORD, host)
        clients.docker("login", "-u", ADMIN_USER, "--password-stdin", host, stdin=ADMIN_PASSWORD)
    return found


@pytest.fixture
def namespace(request: pytest.FixtureRequest) -> str:
    """A containerd namespace prefix unique to the test. clients.sh sets containerd's content
    sharing policy to isolated, so a pull into a fresh namespace downloads every blob."""
    return re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:60]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On failure, show the end of the gateway's log: the server side of what the client saw."""
    report: pytest.TestReport = yield
    gateway = getattr(item, "funcargs", {}).get("gateway")
    if report.failed and isinstance(gateway, Gateway):
        report.sections.append(("gateway log (last 60 lines)", "\n".join(gateway.log().splitlines()[-60:])))
    return report
