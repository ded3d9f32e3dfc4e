"""skopeo (containers/image, as podman and buildah) against two Host-routed registries.

skopeo keeps digests: it copies manifest and blob bytes as they are between an OCI layout and
a registry, so every digest must come back identical.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ..registry_client import RegistryClient
from .conftest import Clients, Registries
from .images import LayoutImage, blob_digests, make_image, sha256_digest, tagged_descriptor

pytestmark = pytest.mark.e2e

# Plain HTTP: skopeo tries TLS first, then falls back.
NO_TLS = "--tls-verify=false"
PLAIN_HTTP = ("--src-tls-verify=false", "--dest-tls-verify=false")


def push(clients: Clients, image: LayoutImage, dest: str, *flags: str) -> None:
    clients.skopeo("copy", "--dest-tls-verify=false", *flags, image.oci_ref, f"docker://{dest}")


def raw_digest(clients: Clients, ref: str) -> str:
    """The digest of the exact manifest bytes the registry serves for REF."""
    raw = clients.skopeo("inspect", "--raw", NO_TLS, f"docker://{ref}").stdout
    return sha256_digest(raw.encode())


def assert_manifest_unknown(clients: Clients, ref: str) -> None:
    result = clients.skopeo("inspect", "--raw", NO_TLS, f"docker://{ref}", check=False)
    assert result.returncode != 0, f"{ref} is still served: {result.stdout[:300]}"
    # OCI distribution spec: a missing manifest is 404 with error code MANIFEST_UNKNOWN.
    assert "manifest unknown" in result.stderr.lower(), result.stderr


def test_push_pull_keeps_digests(
    clients: Clients, registries: Registries, repository: str, tmp_path: Path
) -> None:
    # Layers of some MiB: skopeo sends each in one streamed PATCH.
    image = make_image(tmp_path / "src", "v1", layers=3, layer_size=6 << 20)
    ref = f"{registries.alpha}/{repository}:v1"
    push(clients, image, ref)
    assert raw_digest(clients, ref) == image.digest

    pulled = tmp_path / "pulled"
    clients.skopeo("copy", "--src-tls-verify=false", f"docker://{ref}", f"oci:{pulled}:v1")
    assert tagged_descriptor(pulled, "v1") == image.descriptor
    assert blob_digests(pulled) == image.all_digests


def test_copy_all_keeps_index_digest(
    clients: Clients, registries: Registries, repository: str, tmp_path: Path
) -> None:
    image = make_image(tmp_path / "src", "multi", archs=("amd64", "arm64"), layers=2)
    ref = f"{registries.alpha}/{repository}:multi"
    push(clients, image, ref, "--all")
    assert raw_digest(clients, ref) == image.digest
    for manifest in image.manifests:
        assert (
            raw_digest(clients, f"{registries.alpha}/{repository}@{manifest.descriptor.digest}")
            == manifest.descriptor.digest
        )

    pulled = tmp_path / "pulled"
    clients.skopeo("copy", "--all", "--src-tls-verify=false", f"docker://{ref}", f"oci:{pulled}:multi")
    assert tagged_descriptor(pulled, "multi") == image.descriptor
    assert blob_digests(pulled) == image.all_digests


def test_list_tags(clients: Clients, registries: Registries, repository: str, tmp_path: Path) -> None:
    layout = tmp_path / "src"
    for tag in ("v2", "v1", "latest"):
        push(clients, make_image(layout, tag, layer_size=1024), f"{registries.alpha}/{repository}:{tag}")
    listing = json.loads(
        clients.skopeo("list-tags", NO_TLS, f"docker://{registries.alpha}/{repository}").stdout
    )
    # OCI distribution spec (content discovery): tags come in lexical order.
    assert listing["Tags"] == ["latest", "v1", "v2"]


def test_delete(clients: Clients, registries: Registries, repository: str, tmp_path: Path) -> None:
    layout = tmp_path / "src"
    doomed = make_image(layout, "doomed", layer_size=1024)
    kept = make_image(layout, "kept", layer_size=1024)
    push(clients, doomed, f"{registries.alpha}/{repository}:doomed")
    push(clients, kept, f"{registries.alpha}/{repository}:kept")

    # skopeo resolves the tag, then sends DELETE /v2/<repo>/manifests/<digest>.
    clients.skopeo("delete", NO_TLS, f"docker://{registries.alpha}/{repository}:doomed")
    assert_manifest_unknown(clients, f"{registries.alpha}/{repository}:doomed")
    assert_manifest_unknown(clients, f"{registries.alpha}/{repository}@{doomed.digest}")
    listing = json.loads(
        clients.skopeo("list-tags", NO_TLS, f"docker://{registries.alpha}/{repository}").stdout
    )
    assert listing["Tags"] == ["kept"]
    assert raw_digest(clients, f"{registries.alpha}/{repository}:kept") == kept.digest


def test_cross_repository_copy(
    clients: Clients, registries: Registries, repository: str, tmp_path: Path
) -> None:
    image = make_image(tmp_path / "src", "v1", layers=2)
    source, target = f"{registries.alpha}/{repository}/a:v1", f"{registries.alpha}/{repository}/b:v1"
    push(clients, image, source)
    # Registry to registry on one host: skopeo's blob info cache knows the layers are in the
    # source repository, so it asks to mount each (POST uploads/?mount=<digest>&from=<repo>)
    # and uploads only if the answer is not 201. Its --debug log says which happened.
    copy = clients.skopeo("--debug", "copy", *PLAIN_HTTP, f"docker://{source}", f"docker://{target}")
    layers = image.manifests[0].layers
    for layer in layers:
        assert f"mount={layer.digest.replace(':', '%3A')}" in copy.stderr, copy.stderr
    assert copy.stderr.count("... mount OK") == len(layers), copy.stderr
    assert raw_digest(clients, target) == image.digest

    pulled = tmp_path / "pulled"
    clients.skopeo("copy", "--src-tls-verify=false", f"docker://{target}", f"oci:{pulled}:v1")
    assert tagged_descriptor(pulled, "v1") == image.descriptor
    assert blob_digests(pulled) == image.all_digests


def test_registries_are_isolated(
    clients: Clients,
    registries: Registries,
    repository: str,
    tmp_path: Path,
    beta: RegistryClient,
) -> None:
    image = make_image(tmp_path / "src", "v1")
    push(clients, image, f"{registries.alpha}/{repository}:v1")
    assert raw_digest(clients, f"{registries.alpha}/{repository}:v1") == image.digest

    assert_manifest_unknown(clients, f"{registries.beta}/{repository}:v1")
    assert_manifest_unknown(clients, f"{registries.beta}/{repository}@{image.digest}")
    result = clients.skopeo("list-tags", NO_TLS, f"docker://{registries.beta}/{repository}", check=False)
    assert result.returncode != 0 or json.loads(result.stdout)["Tags"] == [], result.stdout

    # Nor are its blobs, by HEAD or by a mount naming alpha's repository.
    layer = image.manifests[0].layers[0].digest
    assert beta.request("HEAD", f"/v2/{repository}/blobs/{layer}").status_code == 404
    mount = beta.request(
        "POST", f"/v2/{repository}/blobs/uploads/", params={"mount": layer, "from": repository}
    )
    # OCI spec: a mount the registry cannot do starts a plain upload session (202), never 201.
    assert mount.status_code == 202, (mount.status_code, mount.headers, mount.text)
