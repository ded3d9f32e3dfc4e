"""Build OCI image layouts offline (oci-layout, index.json, blobs/sha256/…) for the e2e tests.

skopeo reads them as `oci:DIR:TAG`; `ctr images import` reads them tarred (`oci_archive`).
Layers are real tar+gzip archives of random files, so clients that unpack them (containerd,
docker) check the config's diff_ids against the bytes the registry served.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.registry_client import OCI_CONFIG, OCI_INDEX, OCI_MANIFEST
from tests.registry_client import OCI_LAYER as OCI_LAYER_GZIP
from tests.registry_client import digest_of as sha256_digest

REF_NAME = "org.opencontainers.image.ref.name"


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class Manifest:
    """One single-platform image: its manifest, config and layers."""

    descriptor: Descriptor
    architecture: str
    config: Descriptor
    layers: tuple[Descriptor, ...]

    @property
    def blobs(self) -> tuple[Descriptor, ...]:
        return (self.config, *self.layers)


@dataclass(frozen=True)
class LayoutImage:
    """What a tag in an OCI layout points to: one manifest, or an index of several."""

    layout: Path
    tag: str
    descriptor: Descriptor  # the manifest or index the tag names
    manifests: tuple[Manifest, ...]

    @property
    def digest(self) -> str:
        return self.descriptor.digest

    @property
    def oci_ref(self) -> str:
        """The skopeo transport reference, `oci:DIR:TAG`."""
        return f"oci:{self.layout}:{self.tag}"

    @property
    def all_digests(self) -> set[str]:
        """Every manifest, index, config and layer digest of the image."""
        digests = {self.digest}
        for manifest in self.manifests:
            digests |= {manifest.descriptor.digest, *(blob.digest for blob in manifest.blobs)}
        return digests


def _put_blob(layout: Path, content: bytes, media_type: str) -> Descriptor:
    digest = sha256_digest(content)
    (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).write_bytes(content)
    return Descriptor(media_type, digest, len(content))


def _layer_tar(path: str, payload: bytes) -> bytes:
    """A one-file tar with fixed owner and mtime, so a seed gives the same bytes every time."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        directory = tarfile.TarInfo(path.split("/")[0])
        directory.type, directory.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(directory)
        member = tarfile.TarInfo(path)
        member.size, member.mode = len(payload), 0o644
        tar.addfile(member, io.BytesIO(payload))
    return out.getvalue()


def _json_bytes(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def make_image(
    layout: Path,
    tag: str = "latest",
    *,
    archs: tuple[str, ...] = ("amd64",),
    layers: int = 1,
    layer_size: int = 1 << 20,
    seed: str | None = None,
) -> LayoutImage:
    """Add TAG to the OCI layout at LAYOUT (created if missing) and return what it names.

    One arch gives a tag on an image manifest; several give a tag on an image index
    (multi-arch). Payloads are random: os.urandom, or derived from SEED so that the same seed
    gives the same digests. Other tags already in the layout are kept.
    """
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    rng = random.Random(seed) if seed is not None else None

    manifests: list[Manifest] = []
    for arch in archs:
        layer_descriptors: list[Descriptor] = []
        diff_ids: list[str] = []
        for i in range(layers):
            payload = rng.randbytes(layer_size) if rng else os.urandom(layer_size)
            tar_bytes = _layer_tar(f"layer{i}/data-{arch}-{tag}.bin", payload)
            diff_ids.append(sha256_digest(tar_bytes))
            # mtime=0 and no file name in the gzip header, so the blob digest is reproducible.
            blob = gzip.compress(tar_bytes, compresslevel=1, mtime=0)
            layer_descriptors.append(_put_blob(layout, blob, OCI_LAYER_GZIP))
        config = _put_blob(
            layout,
            _json_bytes(
                {
                    "created": "1970-01-01T00:00:00Z",
                    "architecture": arch,
                    "os": "linux",
                    "config": {"Cmd": ["/bin/sh"]},
                    "rootfs": {"type": "layers", "diff_ids": diff_ids},
                    "history": [
                        {"created": "1970-01-01T00:00:00Z", "created_by": "tests/e2e/images.py"}
                        for _ in diff_ids
                    ],
                }
            ),
            OCI_CONFIG,
        )
        manifest = _put_blob(
            layout,
            _json_bytes(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": config.to_json(),
                    "layers": [layer.to_json() for layer in layer_descriptors],
                }
            ),
            OCI_MANIFEST,
        )
        manifests.append(Manifest(manifest, arch, config, tuple(layer_descriptors)))

    if len(manifests) == 1:
        top = manifests[0].descriptor
    else:
        top = _put_blob(
            layout,
            _json_bytes(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_INDEX,
                    "manifests": [
                        {
                            **m.descriptor.to_json(),
                            "platform": {"architecture": m.architecture, "os": "linux"},
                        }
                        for m in manifests
                    ],
                }
            ),
            OCI_INDEX,
        )

    index_path = layout / "index.json"
    index = (
        json.loads(index_path.read_text()) if index_path.exists() else {"schemaVersion": 2, "manifests": []}
    )
    index["manifests"] = [
        entry for entry in index["manifests"] if entry.get("annotations", {}).get(REF_NAME) != tag
    ]
    index["manifests"].append({**top.to_json(), "annotations": {REF_NAME: tag}})
    index_path.write_text(json.dumps(index))
    return LayoutImage(layout, tag, top, tuple(manifests))


def tagged_descriptor(layout: Path, tag: str) -> Descriptor:
    """The descriptor index.json gives for TAG (e.g. in a layout skopeo pulled into)."""
    index = json.loads((layout / "index.json").read_text())
    entries = [entry for entry in index["manifests"] if entry.get("annotations", {}).get(REF_NAME) == tag]
    assert len(entries) == 1, f"{layout}/index.json has {len(entries)} entries for {tag}: {index}"
    entry = entries[0]
    return Descriptor(entry["mediaType"], entry["digest"], entry["size"])


def blob_digests(layout: Path) -> set[str]:
    """The digests of the blobs in a layout, each checked against its own bytes."""
    digests = set()
    for path in (layout / "blobs" / "sha256").iterdir():
        digest = sha256_digest(path.read_bytes())
        assert digest == f"sha256:{path.name}", f"{path} holds bytes of {digest}"
        digests.add(digest)
    return digests


def oci_archive(image: LayoutImage, path: Path) -> Path:
    """Tar the layout (for `ctr images import`, which reads an OCI archive, not a directory)."""
    with tarfile.open(path, "w") as tar:
        for name in ("oci-layout", "index.json", "blobs"):
            tar.add(image.layout / name, arcname=name)
    return path
