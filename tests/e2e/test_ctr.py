"""containerd's ctr (what Kubernetes nodes use) against two Host-routed registries.

ctr pushes what is in containerd's content store: the image is imported from an OCI archive
first. containerd pushes monolithically (POST uploads/, then one PUT with the body), blobs in
parallel, and pulls with HEAD manifests/<tag> and then GET by digest.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import Clients, Registries
from .images import LayoutImage, make_image, oci_archive, sha256_digest

pytestmark = pytest.mark.e2e


def assert_content(clients: Clients, namespace: str, image: LayoutImage) -> None:
    """Every manifest, index and blob is in NAMESPACE's content store, byte for byte."""
    for digest in sorted(image.all_digests):
        expected = image.layout / "blobs" / "sha256" / digest.removeprefix("sha256:")
        assert clients.content(namespace, digest) == expected.read_bytes(), digest


def push_then_pull(
    clients: Clients, namespace: str, image: LayoutImage, ref: str, tmp_path: Path, *platform_flags: str
) -> None:
    pusher, puller = f"{namespace}-push", f"{namespace}-pull"
    name, _ = ref.rsplit(":", 1)
    archive = oci_archive(image, tmp_path / "image.tar")
    clients.ctr(pusher, "images", "import", "--no-unpack", *platform_flags, "--base-name", name, archive)
    assert clients.ctr_image_digest(pusher, ref) == image.digest
    # ctr push sends all the content the image has locally (it has no --all-platforms).
    clients.ctr(pusher, "images", "push", "--plain-http", ref)

    # A fresh namespace has none of the content, so this pull downloads every blob; unpacking
    # checks each layer against the config's diff_ids.
    clients.ctr(puller, "images", "pull", "--plain-http", *platform_flags, ref)
    assert clients.ctr_image_digest(puller, ref) == image.digest
    assert_content(clients, puller, image)


def test_push_pull(
    clients: Clients, registries: Registries, repository: str, namespace: str, tmp_path: Path
) -> None:
    image = make_image(tmp_path / "src", "v1", layers=3)
    push_then_pull(clients, namespace, image, f"{registries.alpha}/{repository}:v1", tmp_path)
    skopeo_raw = clients.skopeo(
        "inspect", "--raw", "--tls-verify=false", f"docker://{registries.alpha}/{repository}:v1"
    ).stdout
    assert sha256_digest(skopeo_raw.encode()) == image.digest


def test_push_pull_multi_arch(
    clients: Clients, registries: Registries, repository: str, namespace: str, tmp_path: Path
) -> None:
    image = make_image(tmp_path / "src", "multi", archs=("amd64", "arm64"), layers=2)
    push_then_pull(
        clients, namespace, image, f"{registries.beta}/{repository}:multi", tmp_path, "--all-platforms"
    )


def test_pull_then_push_to_other_repositories(
    clients: Clients, registries: Registries, repository: str, namespace: str, tmp_path: Path
) -> None:
    image = make_image(tmp_path / "src", "v1", layers=2)
    source = f"{registries.alpha}/{repository}/a:v1"
    clients.skopeo("copy", "--dest-tls-verify=false", image.oci_ref, f"docker://{source}")
    clients.ctr(f"{namespace}-src", "images", "pull", "--plain-http", source)
    assert_content(clients, f"{namespace}-src", image)

    # The pulled blobs carry containerd.io/distribution.source.<host> labels: a push to the
    # same host mounts them from the source repository (POST ?mount=&from=), a push to the
    # other registry uploads them.
    targets = {"alpha": f"{registries.alpha}/{repository}/b:v1", "beta": f"{registries.beta}/{repository}:v1"}
    for target in targets.values():
        clients.ctr(f"{namespace}-src", "images", "tag", source, target)
        clients.ctr(f"{namespace}-src", "images", "push", "--plain-http", target)
    for registry, target in targets.items():
        clients.ctr(f"{namespace}-{registry}", "images", "pull", "--plain-http", target)
        assert clients.ctr_image_digest(f"{namespace}-{registry}", target) == image.digest
        assert_content(clients, f"{namespace}-{registry}", image)
