"""Manifest parsing: what can be rejected from the bytes alone."""

from __future__ import annotations

import json
import re

import pytest

from ocigate.storage.errors import ManifestInvalid
from ocigate.storage.manifests import DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, parse_manifest

CONFIG = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + "a" * 64, "size": 2}
LAYER = {
    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
    "digest": "sha256:" + "b" * 64,
    "size": 9,
}


def manifest(**fields: object) -> bytes:
    document = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": CONFIG, "layers": [LAYER]}
    document.update(fields)
    return json.dumps({k: v for k, v in document.items() if v is not None}).encode()


def test_image_manifest_lists_config_and_layers() -> None:
    parsed = parse_manifest(manifest(), OCI_MANIFEST)
    assert parsed.media_type == OCI_MANIFEST
    assert [str(d.digest) for d in parsed.blobs] == [CONFIG["digest"], LAYER["digest"]]
    assert parsed.artifact_type == CONFIG["mediaType"]  # referrers fall back to config.mediaType
    assert parsed.subject is None


def test_artifact_with_subject() -> None:
    subject = {"mediaType": OCI_MANIFEST, "digest": "sha256:" + "c" * 64, "size": 100}
    parsed = parse_manifest(
        manifest(artifactType="application/x.sbom", subject=subject, annotations={"k": "v"}), None
    )
    assert parsed.artifact_type == "application/x.sbom"
    assert parsed.subject is not None
    assert str(parsed.subject.digest) == subject["digest"]
    assert json.loads(parsed.annotations or b"") == {"k": "v"}


def test_index_lists_children() -> None:
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": "sha256:" + "d" * 64, "size": 5}],
    }
    parsed = parse_manifest(json.dumps(index).encode(), OCI_INDEX)
    assert parsed.blobs == ()
    assert [str(c.digest) for c in parsed.children] == ["sha256:" + "d" * 64]


def test_media_type_from_content_type_when_body_has_none() -> None:
    parsed = parse_manifest(manifest(mediaType=None), DOCKER_MANIFEST)
    assert parsed.media_type == DOCKER_MANIFEST


def test_foreign_layers_need_not_be_in_the_registry() -> None:
    foreign = dict(LAYER, mediaType="application/vnd.docker.image.rootfs.foreign.diff.tar.gzip")
    parsed = parse_manifest(manifest(mediaType=DOCKER_MANIFEST, layers=[foreign]), DOCKER_MANIFEST)
    assert [str(d.digest) for d in parsed.blobs] == [CONFIG["digest"]]


@pytest.mark.parametrize(
    ("content", "content_type", "message"),
    [
        (b"{not json", OCI_MANIFEST, "not valid JSON"),
        (b"[]", OCI_MANIFEST, "JSON object"),
        (manifest(mediaType="application/x-unknown"), None, "unknown manifest media type"),
        (manifest(mediaType=None), "application/json", "unknown manifest media type"),
        (manifest(), OCI_INDEX, "does not match"),
        (manifest(), "text/plain", "unknown manifest media type in Content-Type"),
        (manifest(), "application/json", "unknown manifest media type in Content-Type"),
        (manifest(mediaType=DOCKER_MANIFEST), OCI_MANIFEST, "does not match"),
        (manifest(schemaVersion=1), OCI_MANIFEST, "schema 1"),
        (manifest(mediaType="application/vnd.docker.distribution.manifest.v1+prettyjws"), None, "schema 1"),
        (manifest(schemaVersion=3), OCI_MANIFEST, "schemaVersion"),
        (manifest(config=None), OCI_MANIFEST, "config must be a descriptor"),
        (manifest(layers={"a": 1}), OCI_MANIFEST, "layers must be a list"),
        (manifest(layers=[dict(LAYER, digest="sha256:xyz")]), OCI_MANIFEST, "layers\\[0\\]"),
        (manifest(layers=[dict(LAYER, size=-1)]), OCI_MANIFEST, "non-negative"),
        (manifest(layers=[dict(LAYER, size=True)]), OCI_MANIFEST, "non-negative"),
        (manifest(annotations=["x"]), OCI_MANIFEST, "annotations"),
    ],
)
def test_invalid_manifests(content: bytes, content_type: str | None, message: str) -> None:
    with pytest.raises(ManifestInvalid) as raised:
        parse_manifest(content, content_type)
    assert raised.value.status == 400
    assert re.search(message, raised.value.message)
