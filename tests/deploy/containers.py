"""buildah, podman and skopeo on private storage (vfs: no kernel overlay needed), for the image test.

Nothing of the machine's container configuration leaks in (auth file, storage), and nothing
this test makes leaks out: every store lives in a directory the test removes afterwards.
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

TOOLS = ("debootstrap", "buildah", "podman", "skopeo", "unshare")
INSTALL_HINT = "run `bash tests/e2e/install-clients.sh` as root"
# podman keeps RLIMIT_NPROC at 32768 for itself (strace shows it lowering its own limit) and, as
# root, asks runc for 1048576 open files; these machines' root lacks CAP_SYS_RESOURCE, so runc
# can give a container no more than podman has: ask for what the machine allows.
_NOFILE = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
_NPROC = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], 32768)
ULIMITS = ("--ulimit", f"nofile={_NOFILE}:{_NOFILE}", "--ulimit", f"nproc={_NPROC}:{_NPROC}")


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


@dataclass(frozen=True)
class Storage:
    """One containers-storage (images, containers, volumes) in a directory of its own."""

    path: Path

    def __post_init__(self) -> None:
        (self.path / "auth.json").write_text("{}")  # empty: credentials are given per command

    @property
    def options(self) -> list[str]:
        return [
            "--root",
            str(self.path / "root"),
            "--runroot",
            str(self.path / "run"),
            "--storage-driver",
            "vfs",
        ]

    def reference(self, image: str) -> str:
        """The skopeo transport reference of IMAGE in this storage."""
        return f"containers-storage:[vfs@{self.path / 'root'}+{self.path / 'run'}]{image}"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "REGISTRY_AUTH_FILE": str(self.path / "auth.json")}

    def run(
        self, *argv: str | Path, check: bool = True, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(arg) for arg in argv],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(map(str, argv))} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def podman(
        self, *args: str | Path, check: bool = True, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        return self.run(
            "podman",
            *self.options,
            "--tmpdir",
            self.path / "libpod",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "none",
            *args,
            check=check,
            timeout=timeout,
        )

    def skopeo(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        return self.run("skopeo", *args)

    def remove(self) -> None:
        self.podman("rm", "--all", "--force", "--time", "0", check=False)
        shutil.rmtree(self.path, ignore_errors=True)
