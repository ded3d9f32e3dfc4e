"""Parsing and validating manifests on push.

What is checked here is what can be checked from the bytes alone: JSON, a known media type,
well-formed descriptors. Whether the referenced blobs and child manifests exist is the
repository's check (`repository.py`), since it needs the metadata store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from .digest import Digest
from .errors import DigestInvalid, ManifestInvalid

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = frozenset(
    {
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    }
)
IMAGE_MANIFESTS = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEXES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFEST_MEDIA_TYPES = IMAGE_MANIFESTS | INDEXES

# Layers a registry is not expected to hold (docker "foreign" layers, served from `urls`).
_FOREIGN_LAYERS = frozenset(
    {
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    }
)


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int


@dataclass(frozen=True, slots=True)
class ParsedManifest:
    media_type: str
    blobs: tuple[Descriptor, ...]  # config and layers that must be in the repository
    children: tuple[Descriptor, ...]  # manifests an index points to
    subject: Descriptor | None
    artifact_type: str | None  # what the referrers API reports
    annotations: bytes | None


def parse_manifest(content: bytes, content_type: str | None) -> ParsedManifest:
    try:
        document = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise ManifestInvalid(str(exc), message="manifest is not valid JSON") from None
    if not isinstance(document, dict):
        raise ManifestInvalid(message="manifest must be a JSON object")

    media_type = _media_type(document, content_type)
    if document.get("schemaVersion") != 2:
        raise ManifestInvalid(message="manifest schemaVersion must be 2")

    subject = _descriptor(document["subject"], "subject") if "subject" in document else None
    annotations = document.get("annotations")
    if annotations is not None and not isinstance(annotations, dict):
        raise ManifestInvalid(message="annotations must be an object")
    artifact_type = document.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise ManifestInvalid(message="artifactType must be a string")

    blobs: tuple[Descriptor, ...] = ()
    children: tuple[Descriptor, ...] = ()
    if media_type in IMAGE_MANIFESTS:
        config = _descriptor(document.get("config"), "config")
        layers = _descriptor_list(document, "layers", required=True)
        blobs = (config, *(d for d in layers if d.media_type not in _FOREIGN_LAYERS))
        if artifact_type is None and media_type == OCI_MANIFEST:
            artifact_type = config.media_type  # OCI spec: the referrers API falls back to it
    else:
        children = _descriptor_list(document, "manifests", required=True)

    return ParsedManifest(
        media_type=media_type,
        blobs=blobs,
        children=children,
        subject=subject,
        artifact_type=artifact_type,
        annotations=orjson.dumps(annotations) if annotations else None,
    )


def _media_type(document: dict[str, Any], content_type: str | None) -> str:
    declared = document.get("mediaType")
    header = (content_type or "").split(";", 1)[0].strip().lower() or None
    if declared is not None and not isinstance(declared, str):
        raise ManifestInvalid(message="mediaType must be a string")
    if declared in DOCKER_SCHEMA1 or header in DOCKER_SCHEMA1 or document.get("schemaVersion") == 1:
        raise ManifestInvalid(
            message="Docker schema 1 manifests are not supported; push with a current client "
            "(Docker image manifest v2 schema 2 or OCI)"
        )
    # OCI spec: a manifest with a mediaType is pushed with that Content-Type, and a registry
    # refuses a type it does not know; without a Content-Type the body's mediaType decides
    if header is not None and header not in MANIFEST_MEDIA_TYPES:
        raise ManifestInvalid({"contentType": header}, message="unknown manifest media type in Content-Type")
    if declared and header and header != declared:
        raise ManifestInvalid(
            {"contentType": header, "mediaType": declared},
            message="Content-Type does not match the manifest's mediaType",
        )
    media_type = declared or header
    if media_type not in MANIFEST_MEDIA_TYPES:
        raise ManifestInvalid(media_type, message="unknown manifest media type")
    return media_type


def _descriptor(value: Any, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise ManifestInvalid(where, message=f"{where} must be a descriptor object")
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise ManifestInvalid(where, message=f"{where}: mediaType is required")
    if not isinstance(digest, str):
        raise ManifestInvalid(where, message=f"{where}: digest is required")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ManifestInvalid(where, message=f"{where}: size must be a non-negative integer")
    try:
        parsed = Digest.parse(digest)
    except DigestInvalid as exc:
        raise ManifestInvalid(digest, message=f"{where}: {exc.message}") from None
    return Descriptor(media_type, parsed, size)


def _descriptor_list(document: dict[str, Any], key: str, *, required: bool) -> tuple[Descriptor, ...]:
    value = document.get(key)
    if value is None and not required:
        return ()
    if not isinstance(value, list):
        raise ManifestInvalid(key, message=f"{key} must be a list of descriptors")
    return tuple(_descriptor(item, f"{key}[{i}]") for i, item in enumerate(value))
