"""The docker CLI and dockerd against two Host-routed registries.

docker 20.10 cannot `docker load` an OCI layout, so the image goes in by skopeo and comes to
dockerd by `docker pull`. `docker push` rebuilds a docker v2s2 manifest from its local layers
(recompressed: layer digests change), PATCHes chunked without Content-Type, then PUTs
`?digest=`, and HEADs the blob; the config, and so the image ID, stays the same.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .conftest import Clients, Registries
from .images import make_image, sha256_digest

pytestmark = pytest.mark.e2e

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def pulled_digest(output: str) -> str:
    """`docker pull` prints `Digest: sha256:…` of the manifest it resolved the tag to."""
    match = re.search(r"^Digest: (sha256:[0-9a-f]{64})$", output, re.MULTILINE)
    assert match, output
    return match.group(1)


def image_id(clients: Clients, ref: str) -> str:
    return clients.docker("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()


def test_pull_tag_push_pull(
    clients: Clients, registries: Registries, repository: str, tmp_path: Path
) -> None:
    image = make_image(tmp_path / "src", "v1", layers=2)
    config = image.manifests[0].config.digest
    source, target = f"{registries.alpha}/{repository}:v1", f"{registries.beta}/{repository}:v2"
    clients.skopeo("copy", "--dest-tls-verify=false", image.oci_ref, f"docker://{source}")

    assert pulled_digest(clients.docker("pull", source).stdout) == image.digest
    assert image_id(clients, source) == config  # layers unpacked and checked by diff_id

    clients.docker("tag", source, target)
    pushed = clients.docker("push", target).stdout
    match = re.search(r"^v2: digest: (sha256:[0-9a-f]{64}) size: (\d+)$", pushed, re.MULTILINE)
    assert match, pushed
    pushed_digest = match.group(1)

    raw = clients.skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{target}").stdout
    assert sha256_digest(raw.encode()) == pushed_digest
    assert len(raw.encode()) == int(match.group(2))
    manifest = json.loads(raw)
    assert manifest["mediaType"] == DOCKER_MANIFEST
    assert manifest["config"]["digest"] == config

    # Drop the image so that the pull downloads and unpacks every layer again.
    clients.docker("rmi", source, target)
    assert clients.docker("image", "inspect", target, check=False).returncode != 0
    assert pulled_digest(clients.docker("pull", target).stdout) == pushed_digest
    assert image_id(clients, target) == config
    repo_digests = json.loads(
        clients.docker("image", "inspect", "--format", "{{json .RepoDigests}}", target).stdout
    )
    assert f"{registries.beta}/{repository}@{pushed_digest}" in repo_digests
    clients.docker("rmi", target)
