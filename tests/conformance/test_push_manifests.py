"""Pushing manifests (spec.md "Pushing Manifests", end-7) and the official 02_push manifest checks."""

from __future__ import annotations

import json

import pytest
import requests

from tests.registry_client import RegistryClient

from .oci import (
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_MANIFEST,
    EMPTY_JSON,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    Blob,
    assert_error,
    blob,
    describe,
    digest_of,
    error_codes,
    go_bytes,
    image_index,
    image_manifest,
    path_of,
    push_blobs,
    push_simple_image,
)

MiB = 1024 * 1024


def image_parts(client: RegistryClient, repository: str, label: str = "image") -> tuple[Blob, Blob]:
    config = blob(f"{label} config", OCI_CONFIG)
    layer = blob(f"{label} layer", size=256)
    push_blobs(client, repository, config, layer)
    return config, layer


def put_manifest(
    client: RegistryClient, repository: str, reference: str, body: bytes, media_type: str = OCI_MANIFEST
) -> requests.Response:
    return client.request(
        "PUT", f"/v2/{repository}/manifests/{reference}", data=body, headers={"Content-Type": media_type}
    )


def assert_created_manifest(
    client: RegistryClient, repository: str, response: requests.Response, body: bytes, media_type: str
) -> None:
    assert response.status_code == 201, describe(response)
    digest = digest_of(body)
    # "The Docker-Content-Digest header returns the canonical digest of the uploaded blob, and MUST be
    # equal to the client provided digest."
    assert response.headers["Docker-Content-Digest"] == digest
    # "The `<location>` is a pullable manifest URL."
    location = path_of(response.headers["Location"])
    assert location.startswith(f"/v2/{repository}/manifests/")
    pulled = client.request("GET", location, headers={"Accept": media_type})
    assert pulled.status_code == 200, describe(pulled)
    assert pulled.content == body
    assert pulled.headers["Content-Type"] == media_type


@pytest.mark.parametrize("by", ["tag", "digest"])
def test_put_manifest_is_201_with_location_and_digest(
    client: RegistryClient, repository: str, by: str
) -> None:
    config, layer = image_parts(client, repository)
    body = image_manifest(config.descriptor(), [layer.descriptor()])
    reference = "v1.0" if by == "tag" else digest_of(body)
    response = put_manifest(client, repository, reference, body)
    assert_created_manifest(client, repository, response, body, OCI_MANIFEST)


def test_the_same_manifest_can_be_pushed_under_several_tags(client: RegistryClient, repository: str) -> None:
    # 02_push "PUT should accept a manifest upload" for test0..test3.
    config, layer = image_parts(client, repository)
    body = image_manifest(config.descriptor(), [layer.descriptor()])
    for index in range(4):
        response = put_manifest(client, repository, f"test{index}", body)
        assert response.status_code == 201, describe(response)
        assert response.headers["Location"]
    for index in range(4):
        response = client.request("GET", f"/v2/{repository}/manifests/test{index}")
        assert response.headers["Docker-Content-Digest"] == digest_of(body)


def test_a_manifest_with_no_layers_is_accepted(client: RegistryClient, repository: str) -> None:
    # "The uploaded manifest MUST reference any blobs that make up the object. However, the list of
    # blobs MAY be empty." 02_push pushes this without a `mediaType` field, as tag "emptylayer".
    config = blob("config", OCI_CONFIG)
    push_blobs(client, repository, config)
    body = image_manifest(config.descriptor(), [], media_type=None)
    response = put_manifest(client, repository, "emptylayer", body)
    assert_created_manifest(client, repository, response, body, OCI_MANIFEST)
    response = client.request("DELETE", f"/v2/{repository}/manifests/{digest_of(body)}")
    assert response.status_code == 202, describe(response)


def test_unknown_fields_and_embedded_data_are_accepted_and_kept(
    client: RegistryClient, repository: str
) -> None:
    # The official suite's manifests carry a config descriptor with `data` and an unspecified
    # field, and layer descriptors with `"newUnspecifiedField": null`.
    config, layer = image_parts(client, repository)
    body = image_manifest(
        config.descriptor(data=go_bytes(config.content), newUnspecifiedField=go_bytes(b"hello world")),
        [layer.descriptor(newUnspecifiedField=None)],
        somethingNew={"nested": [1, 2, 3]},
    )
    response = put_manifest(client, repository, "unknown-fields", body)
    assert_created_manifest(client, repository, response, body, OCI_MANIFEST)


def test_a_pushed_tag_moves_to_the_latest_manifest(client: RegistryClient, repository: str) -> None:
    config, layer = image_parts(client, repository)
    first = image_manifest(config.descriptor(), [layer.descriptor()])
    second = image_manifest(config.descriptor(), [layer.descriptor()], annotations={"v": "2"})
    client.push_manifest(repository, "moving", first)
    client.push_manifest(repository, "moving", second)
    response = client.request("GET", f"/v2/{repository}/manifests/moving")
    assert response.content == second
    assert response.headers["Docker-Content-Digest"] == digest_of(second)
    # The first manifest stays pullable by digest.
    response = client.request("GET", f"/v2/{repository}/manifests/{digest_of(first)}")
    assert response.status_code == 200, describe(response)
    assert response.content == first


def test_pushing_an_identical_manifest_again_is_201(client: RegistryClient, repository: str) -> None:
    config, layer = image_parts(client, repository)
    body = image_manifest(config.descriptor(), [layer.descriptor()])
    for reference in ("again", "again", digest_of(body), digest_of(body)):
        response = put_manifest(client, repository, reference, body)
        assert response.status_code == 201, describe(response)


def test_put_by_a_digest_that_does_not_match_is_400_digest_invalid(
    client: RegistryClient, repository: str
) -> None:
    config, layer = image_parts(client, repository)
    body = image_manifest(config.descriptor(), [layer.descriptor()])
    wrong = digest_of(body + b" ")
    response = put_manifest(client, repository, wrong, body)
    assert_error(response, 400, "DIGEST_INVALID")
    for reference in (wrong, digest_of(body)):
        response = client.request("HEAD", f"/v2/{repository}/manifests/{reference}")
        assert response.status_code == 404, describe(response)


def test_put_by_a_malformed_digest_is_400(client: RegistryClient, repository: str) -> None:
    # 01_pull (v1.0 form): PUT …/manifests/sha256:totallywrong with a junk body → 400 (or 404).
    response = put_manifest(client, repository, "sha256:totallywrong", b"blablabla")
    assert response.status_code == 400, describe(response)
    assert set(error_codes(response)) & {"DIGEST_INVALID", "MANIFEST_INVALID"}, describe(response)


@pytest.mark.parametrize(
    "body",
    [
        b"blablabla",
        b"",
        b"[]",
        b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"',
        b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": []}',
        b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",'
        b' "config": {"mediaType": "x/y", "digest": "sha256:nothex", "size": 2}, "layers": []}',
        b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",'
        b' "config": "not a descriptor", "layers": []}',
    ],
    ids=["junk", "empty", "array", "truncated", "no-config", "bad-digest", "config-not-object"],
)
def test_an_invalid_manifest_is_400_manifest_invalid(
    client: RegistryClient, repository: str, body: bytes
) -> None:
    response = put_manifest(client, repository, "invalid", body)
    assert_error(response, 400, "MANIFEST_INVALID")
    assert client.request("HEAD", f"/v2/{repository}/manifests/invalid").status_code == 404


@pytest.mark.parametrize("content_type", ["text/plain", "application/json", OCI_INDEX])
def test_a_content_type_unknown_or_not_the_manifests_own_is_400(
    client: RegistryClient, repository: str, content_type: str
) -> None:
    """OCI spec: a manifest with a mediaType is pushed with it as its Content-Type; a type the
    registry does not know is refused. Nothing is stored under the tag."""
    config, layer = image_parts(client, repository)
    manifest = image_manifest(config.descriptor(), [layer.descriptor()])
    response = put_manifest(client, repository, "typed", manifest, media_type=content_type)
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["code"] == "MANIFEST_INVALID"
    assert client.request("HEAD", f"/v2/{repository}/manifests/typed").status_code == 404


def test_a_schema1_manifest_is_refused_400_manifest_invalid(client: RegistryClient, repository: str) -> None:
    body = json.dumps(
        {
            "schemaVersion": 1,
            "name": repository,
            "tag": "old",
            "architecture": "amd64",
            "fsLayers": [{"blobSum": digest_of(b"layer")}],
            "history": [{"v1Compatibility": "{}"}],
        }
    ).encode()
    for media_type in (
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        "application/vnd.docker.distribution.manifest.v1+json",
    ):
        response = put_manifest(client, repository, "old", body, media_type)
        assert_error(response, 400, "MANIFEST_INVALID")


def test_a_manifest_referencing_a_missing_blob_is_manifest_blob_unknown(
    client: RegistryClient, repository: str
) -> None:
    # "When a manifest is rejected for this reason, it MUST result in one or more
    # `MANIFEST_BLOB_UNKNOWN` errors."
    config, _ = image_parts(client, repository)
    missing = blob("never pushed")
    body = image_manifest(config.descriptor(), [missing.descriptor()])
    response = put_manifest(client, repository, "missing-layer", body)
    assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")
    body = image_manifest(blob("no config", OCI_CONFIG).descriptor(), [])
    response = put_manifest(client, repository, "missing-config", body)
    assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")


def test_blobs_of_another_repository_do_not_satisfy_a_manifest(
    client: RegistryClient, repository: str
) -> None:
    config, layer = image_parts(client, f"{repository}-holder")
    client.push_blob(repository, b"the repository exists")
    body = image_manifest(config.descriptor(), [layer.descriptor()])
    response = put_manifest(client, repository, "borrowed", body)
    assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")


def test_an_index_referencing_a_missing_manifest_is_manifest_blob_unknown(
    client: RegistryClient, repository: str
) -> None:
    child, _, _, _ = push_simple_image(client, repository, "child")
    absent = image_manifest(blob("c", OCI_CONFIG).descriptor(), [])
    index = image_index(
        [
            {"mediaType": OCI_MANIFEST, "digest": digest_of(child), "size": len(child)},
            {"mediaType": OCI_MANIFEST, "digest": digest_of(absent), "size": len(absent)},
        ]
    )
    response = put_manifest(client, repository, "partial-index", index, OCI_INDEX)
    assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")


def test_a_docker_manifest_is_accepted(client: RegistryClient, repository: str) -> None:
    config = blob("docker config", DOCKER_CONFIG)
    layer = blob("docker layer", DOCKER_LAYER)
    push_blobs(client, repository, config, layer)
    body = image_manifest(config.descriptor(), [layer.descriptor()], media_type=DOCKER_MANIFEST)
    response = put_manifest(client, repository, "docker", body, DOCKER_MANIFEST)
    assert_created_manifest(client, repository, response, body, DOCKER_MANIFEST)


def test_a_non_distributable_layer_with_urls_need_not_be_pushed(
    client: RegistryClient, repository: str
) -> None:
    config, layer = image_parts(client, repository)
    foreign = blob("foreign").descriptor(
        mediaType="application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        urls=["https://example.com/layer.tar.gz"],
    )
    body = image_manifest(config.descriptor(), [layer.descriptor(), foreign])
    response = put_manifest(client, repository, "foreign", body)
    # The manifest's foreign layer lives elsewhere; if the registry rejects it, the spec only allows
    # MANIFEST_BLOB_UNKNOWN, so accept exactly the two outcomes the spec permits.
    if response.status_code != 201:
        assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")


# --- size limit -------------------------------------------------------------------------


def _padded_manifest(config: Blob, layer: Blob, size: int) -> bytes:
    body = image_manifest(config.descriptor(), [layer.descriptor()], annotations={"pad": ""})
    padding = size - len(body)
    assert padding >= 0
    body = image_manifest(config.descriptor(), [layer.descriptor()], annotations={"pad": "x" * padding})
    assert len(body) == size
    return body


def test_a_4_mib_manifest_is_accepted(client: RegistryClient, repository: str) -> None:
    # "Client and registry implementations SHOULD expect to be able to support manifest pushes of at
    # least 4 megabytes."
    config, layer = image_parts(client, repository)
    body = _padded_manifest(config, layer, 4 * MiB)
    response = put_manifest(client, repository, "big", body)
    assert_created_manifest(client, repository, response, body, OCI_MANIFEST)


def test_a_manifest_over_the_limit_is_413(client: RegistryClient, repository: str) -> None:
    # "A registry that enforces this limit SHOULD respond to a request to push a manifest over this
    # limit with a response code `413 Payload Too Large`."
    config, layer = image_parts(client, repository)
    body = _padded_manifest(config, layer, 4 * MiB + 1)
    response = put_manifest(client, repository, "too-big", body)
    assert response.status_code == 413, describe(response)
    assert client.request("HEAD", f"/v2/{repository}/manifests/too-big").status_code == 404


# --- tags ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tag", ["a", "A", "_", "0", "Latest", "v1.2.3-rc.1_build", "x" * 128, "a" + "-._" * 42]
)
def test_every_tag_the_grammar_allows_is_accepted(client: RegistryClient, repository: str, tag: str) -> None:
    # "<reference> as a tag MUST be at most 128 characters in length and MUST match
    # [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}"
    config, layer = image_parts(client, repository)
    body = image_manifest(config.descriptor(), [layer.descriptor()])
    response = put_manifest(client, repository, tag, body)
    assert response.status_code == 201, describe(response)
    response = client.request("GET", f"/v2/{repository}/manifests/{tag}")
    assert response.status_code == 200, describe(response)
    assert response.content == body


@pytest.mark.parametrize(
    "tag", ["x" * 129, ".hidden", "-dash", "semi;colon", "a+b", "tilde~", "sha256-not:digest"]
)
def test_a_tag_outside_the_grammar_is_refused_with_4xx(
    client: RegistryClient, repository: str, tag: str
) -> None:
    config, layer = image_parts(client, repository)
    body = image_manifest(config.descriptor(), [layer.descriptor()])
    response = put_manifest(client, repository, tag, body)
    assert response.status_code == 400, describe(response)
    error_codes(response)


# --- subject / OCI-Subject ----------------------------------------------------------------


def test_a_manifest_with_a_subject_answers_oci_subject(client: RegistryClient, repository: str) -> None:
    # "a registry implementation that supports the referrers API MUST respond with the response
    # header `OCI-Subject: <subject digest>`"
    subject, subject_digest, _, _ = push_simple_image(client, repository, "subject")
    empty = Blob(b"{}", EMPTY_JSON)
    signature = blob("signature", "application/vnd.example.signature")
    push_blobs(client, repository, empty, signature)
    body = image_manifest(
        empty.descriptor(),
        [signature.descriptor()],
        artifact_type="application/vnd.example.signature",
        subject={"mediaType": OCI_MANIFEST, "digest": subject_digest, "size": len(subject)},
    )
    response = put_manifest(client, repository, digest_of(body), body)
    assert response.status_code == 201, describe(response)
    assert response.headers["OCI-Subject"] == subject_digest


def test_a_manifest_whose_subject_does_not_exist_is_accepted(client: RegistryClient, repository: str) -> None:
    # "A registry MUST initially accept an otherwise valid manifest with a `subject` field that
    # references a manifest that does not exist in the repository"
    empty = Blob(b"{}", EMPTY_JSON)
    push_blobs(client, repository, empty)
    absent = image_manifest(blob("absent", OCI_CONFIG).descriptor(), [])
    body = image_manifest(
        empty.descriptor(),
        [empty.descriptor()],
        artifact_type="application/vnd.example.sbom",
        subject={"mediaType": OCI_MANIFEST, "digest": digest_of(absent), "size": len(absent)},
    )
    response = put_manifest(client, repository, digest_of(body), body)
    assert response.status_code == 201, describe(response)
    assert response.headers["OCI-Subject"] == digest_of(absent)


def test_a_manifest_without_subject_has_no_oci_subject_header(
    client: RegistryClient, repository: str
) -> None:
    config, layer = image_parts(client, repository)
    body = image_manifest(config.descriptor(), [layer.descriptor()])
    response = put_manifest(client, repository, "plain", body)
    assert response.status_code == 201, describe(response)
    assert "OCI-Subject" not in response.headers


def test_an_index_with_a_subject_answers_oci_subject(client: RegistryClient, repository: str) -> None:
    subject, subject_digest, _, _ = push_simple_image(client, repository, "subject")
    child, child_digest, _, _ = push_simple_image(client, repository, label="child")
    index = image_index(
        [{"mediaType": OCI_MANIFEST, "digest": child_digest, "size": len(child)}],
        artifact_type="application/vnd.food.stand",
        subject={"mediaType": OCI_MANIFEST, "digest": subject_digest, "size": len(subject)},
    )
    response = put_manifest(client, repository, digest_of(index), index, OCI_INDEX)
    assert response.status_code == 201, describe(response)
    assert response.headers["OCI-Subject"] == subject_digest


def test_an_artifact_manifest_with_the_empty_json_layer_is_accepted(
    client: RegistryClient, repository: str
) -> None:
    # A manifest whose only layer is the empty JSON blob (artifact style).
    empty = Blob(b"{}", EMPTY_JSON)
    config = blob("artifact config", "application/vnd.example.config")
    push_blobs(client, repository, empty, config)
    body = image_manifest(config.descriptor(), [empty.descriptor()])
    response = put_manifest(client, repository, "artifact", body)
    assert_created_manifest(client, repository, response, body, OCI_MANIFEST)


def test_layers_are_listed_by_their_own_media_types(client: RegistryClient, repository: str) -> None:
    config, _ = image_parts(client, repository)
    layers = [
        blob(f"layer {i}", media_type) for i, media_type in enumerate([OCI_LAYER, DOCKER_LAYER, "text/plain"])
    ]
    push_blobs(client, repository, *layers)
    body = image_manifest(config.descriptor(), [layer.descriptor() for layer in layers])
    response = put_manifest(client, repository, "mixed", body)
    assert_created_manifest(client, repository, response, body, OCI_MANIFEST)
