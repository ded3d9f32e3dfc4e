"""The operator's way in the README ("From the image to a first push over HTTPS"), run as
written: the image the suite built with build.sh, started by podman with TLS and JSON logs;
docker logs in over HTTPS trusting a private CA through certs.d, pushes, pulls; the push shows
in /metrics and as an access line with its request id.

What is the test's own: the host name (one resolving to this machine's address outside
127.0.0.0/8, where docker verifies certificates), a free port, a TLS directory under the test's
temporary directory instead of /etc/ocigate/tls, and `--password-stdin` for the interactive
login. `docker` and `podman` on PATH are the suite's: the session's dockerd, and podman on the
build's storage (and the ulimits these machines allow: tests/deploy/containers.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from ..deploy.containers import ULIMITS, Storage
from ..deploy.image_build import BUILT, ROOT
from ..harness.tls import PrivateCA
from ..servers import ADMIN_USER, DOMAIN
from .addresses import machine_address, resolve
from .conftest import DOCKER, Clients
from .images import make_image

pytestmark = pytest.mark.e2e

SECTION = "### From the image to a first push over HTTPS"
NAME = f"walkthrough.{DOMAIN}"
PASSWORD = re.compile(r"created account user 'admin' with password: (\S+)$")


def readme_commands() -> list[str]:
    """The section's shell block, one command a line (continuations joined, comment lines out)."""
    section = (ROOT / "README.md").read_text().split(SECTION, 1)[1]
    block = section.split("```sh\n", 1)[1].split("\n```", 1)[0]
    lines = block.replace("\\\n", " ").splitlines()
    return [line for line in lines if line.strip() and not line.lstrip().startswith("#")]


def wildcard_free_port() -> int:
    """A port free on every address, as `-p` binds it (free_port checks loopback only)."""
    with socket.socket() as sock:
        sock.bind(("", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Operator:
    """Runs README lines in the operator's directory (fullchain.pem, privkey.pem, ca.crt)."""

    cwd: Path
    env: dict[str, str]
    tls_dir: Path  # for /etc/ocigate/tls on the host
    port: int = field(default_factory=wildcard_free_port)

    @property
    def host(self) -> str:
        return f"{NAME}:{self.port}"

    @property
    def substitutions(self) -> dict[str, str]:
        return {
            "registry.example.com:5000": self.host,
            "-p 5000:5000": f"-p {self.port}:5000",
            "/etc/ocigate/tls": str(self.tls_dir),
        }

    def run(self, line: str, stdin: str | None = None) -> str:
        for written, ours in self.substitutions.items():
            # a path after `:` or `=` is the container's (a mount's target, a setting): kept
            line = re.sub(rf"(?<![:=]){re.escape(written)}", ours, line)
        result = self.shell(line, stdin)
        assert result.returncode == 0, f"`{line}`: {result.returncode}\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def start(self, line: str) -> str:
        """The container's start; on a port some other process took since it was picked (the
        ephemeral range is shared with outgoing connections), again on another."""
        for _ in range(3):
            try:
                return self.run(line)
            except AssertionError as failure:
                if "address already in use" not in str(failure):
                    raise
                self.shell("podman rm --force --time 0 ocigate")
                self.port = wildcard_free_port()
        raise AssertionError("three ports were taken in turn")

    def wait_until_serving(self) -> None:
        """The container was started detached: /v2/ answers 401 over verified TLS once it
        serves; one that stopped (a key it cannot read, say) fails at once, with its log."""
        deadline = time.monotonic() + 120
        while True:
            try:
                url = f"https://{self.host}/v2/"
                status = requests.get(url, verify=str(self.cwd / "ca.crt"), timeout=5).status_code
                assert status == 401, f"/v2/ answered {status} without credentials"
                return
            except requests.ConnectionError:
                state = self.shell("podman inspect --format '{{.State.Status}}' ocigate").stdout.strip()
                log = self.shell("podman logs ocigate 2>&1").stdout
                assert state == "running", f"the container is {state}:\n{log}"
                assert time.monotonic() < deadline, f"the container did not serve HTTPS in 120 s:\n{log}"
                time.sleep(0.5)

    def shell(self, line: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-o", "pipefail", "-c", line],
            cwd=self.cwd,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )


@pytest.fixture
def operator(build_storage: Storage, clients: Clients, tmp_path: Path) -> Iterator[Operator]:
    resolve(NAME, machine_address())
    ca = PrivateCA(tmp_path / "ca")
    files = ca.issue([NAME], serial=1301, into=tmp_path / "ca")
    cwd = tmp_path / "operator"
    cwd.mkdir()
    shutil.copy(files.cert, cwd / "fullchain.pem")
    shutil.copy(files.key, cwd / "privkey.pem")
    shutil.copy(ca.ca_file, cwd / "ca.crt")

    bin_dir = tmp_path / "bin"  # the wrappers call the real tools by their paths
    bin_dir.mkdir()
    storage = build_storage.path
    wrappers = {
        "docker": f'exec {DOCKER} -H "unix://{clients.state_dir / "docker.sock"}" "$@"\n',
        # the README names the storage driver; the storage's place is the build's
        "podman": f"exec {shutil.which('podman')} --root {storage / 'root'} --runroot {storage / 'run'} "
        f'--tmpdir {storage / "libpod"} --cgroup-manager cgroupfs --events-backend none "$@"\n',
    }
    for name, body in wrappers.items():
        (bin_dir / name).write_text("#!/bin/sh\n" + body)
        (bin_dir / name).chmod(0o755)
    conf = tmp_path / "containers.conf"  # ULIMITS is ("--ulimit", value, …)
    conf.write_text(f"[containers]\ndefault_ulimits = {json.dumps(ULIMITS[1::2])}\n")
    env = {
        **clients.env,
        **build_storage.env,  # an empty auth file of its own: podman refuses a missing one
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "CONTAINERS_CONF": str(conf),
    }

    walker = Operator(cwd, env, tmp_path / "etc-ocigate-tls")
    try:
        yield walker
    finally:
        walker.shell("podman rm --force --time 0 ocigate")
        walker.shell("podman volume rm --force ocigate-data")
        walker.shell(f"docker rmi --force alpine:3 {walker.host}/team/app:1")
        shutil.rmtree(Path("/etc/docker/certs.d") / walker.host, ignore_errors=True)


def test_the_readme_way_from_the_image_to_a_push_seen_in_metrics_and_logs(
    operator: Operator, clients: Clients, tmp_path: Path
) -> None:
    commands = readme_commands()
    written = "\n".join(commands)
    for placeholder in operator.substitutions:
        assert placeholder in written, f"the README's walkthrough no longer says {placeholder}"
    build, *steps = commands
    # the session's build ran exactly this (build_storage): build.sh without a tag
    assert "bash deploy/image/build.sh" in build, build
    assert BUILT in build, build
    # the operator's own image, as docker has it before the push
    image = make_image(tmp_path / "layout", "v1", layers=2, layer_size=256 << 10)
    archive = tmp_path / "alpine.tar"
    clients.skopeo("copy", image.oci_ref, f"docker-archive:{archive}:alpine:3")
    clients.docker("load", "--input", archive)
    loaded_id = clients.docker("image", "inspect", "--format", "{{.Id}}", "alpine:3").stdout.strip()

    password = ""
    outputs: list[str] = []
    for line in steps:
        if "docker login" in line:
            assert line.endswith(f"-u {ADMIN_USER}"), line
            outputs.append(operator.run(line + " --password-stdin", stdin=password))
            continue
        if "docker pull" in line:  # as on another host: the pull downloads every layer
            clients.docker("rmi", "alpine:3")
        if re.search(r"podman .* run ", line):
            outputs.append(operator.start(line))
            operator.wait_until_serving()
        else:
            outputs.append(operator.run(line))
        if "grep password" in line:
            messages = [json.loads(entry)["message"] for entry in outputs[-1].splitlines()]
            password = next(found[1] for m in messages if (found := PASSWORD.search(m)))

    # the last two lines: the push in /metrics, then in the JSON access log
    metrics, log = outputs[-2], outputs[-1]
    pushed = [
        line
        for line in metrics.splitlines()
        if 'route="/v2/{name}/manifests/{reference}"' in line and 'status="2xx"' in line
    ]
    assert len(pushed) == 1, metrics
    assert float(pushed[0].split()[-1]) >= 1, metrics
    entries = [json.loads(entry) for entry in log.splitlines()]
    manifest_puts = [e for e in entries if e["route"] == "/v2/{name}/manifests/{reference}"]
    assert [(e["path"], e["status"]) for e in manifest_puts] == [("/v2/team/app/manifests/1", 201)], log
    assert re.fullmatch(r"[0-9a-f]{12}-[0-9]+", manifest_puts[0]["request_id"]), manifest_puts
    assert {e["method"] for e in entries} == {"PUT"}, log
    assert "/v2/{name}/blobs/uploads/{reference}" in {e["route"] for e in entries}, log  # the layers
    # and docker pulled what it pushed, every byte of it (nothing of it was left in docker)
    pulled = clients.docker(
        "image", "inspect", "--format", "{{.Id}}", f"{operator.host}/team/app:1"
    ).stdout.strip()
    assert pulled == loaded_id
