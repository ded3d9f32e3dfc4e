"""The image, built once per test session with `bash deploy/image/build.sh` as the README runs it
(no tag: `localhost/ocigate:<version>`), into a buildah/podman storage of its own: the image
test pushes and runs it, the operator walkthrough (tests/e2e/test_walkthrough.py) runs it with
TLS. A pytest plugin (tests/conftest.py), so that both directories share the one build: it
takes a minute or two, plus one or two for the Debian root, which build.sh caches under
/var/tmp between runs.
"""

from __future__ import annotations

import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from .containers import INSTALL_HINT, Storage, missing_tools

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
BUILT = f"localhost/ocigate:{VERSION}"  # build.sh's default tag


@pytest.fixture(scope="session")
def build_storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storage]:
    """The storage holding BUILT (and the base image it was built on)."""
    missing = missing_tools()
    if missing:
        pytest.fail(f"image tools missing: {', '.join(missing)}; {INSTALL_HINT}")
    storage = Storage(tmp_path_factory.mktemp("buildah"))
    result = subprocess.run(
        ["bash", ROOT / "deploy" / "image" / "build.sh"],
        env={
            **storage.env,
            "BUILDAH_ROOT": str(storage.path / "root"),
            "BUILDAH_RUNROOT": str(storage.path / "run"),
        },
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert result.returncode == 0, f"build.sh failed:\n{result.stdout[-5000:]}\n{result.stderr[-5000:]}"
    assert f"built {BUILT}" in result.stdout, result.stdout[-2000:]
    yield storage
    storage.remove()
