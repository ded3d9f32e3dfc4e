"""Pull workflow (spec.md "Pull", end-2, end-3) and the official suite's 01_pull checks."""

from __future__ import annotations

import json

import pytest

from tests.registry_client import RegistryClient

from .oci import (
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    SPEC_ERROR_CODES,
    assert_error,
    blob,
    describe,
    digest_of,
    error_codes,
    image_index,
    image_manifest,
    push_blobs,
    push_simple_image,
)

# The official suite's "dummy" digest: sha256 of "hello world", never pushed by anyone.
DUMMY_DIGEST = digest_of(b"hello world")
# The official suite's nonexistent manifest reference (not even a valid tag), expected 404.
NONEXISTENT_REFERENCE = ".INVALID_MANIFEST_NAME"
IDENTITY = {"Accept-Encoding": "identity"}


# --- blobs ------------------------------------------------------------------------------


def test_head_of_a_nonexistent_blob_is_404(client: RegistryClient, repository: str) -> None:
    push_simple_image(client, repository, "latest")
    response = client.request("HEAD", f"/v2/{repository}/blobs/{DUMMY_DIGEST}")
    assert response.status_code == 404, describe(response)
    assert response.content == b""


def test_head_of_an_existing_blob_is_200_with_digest_and_length(
    client: RegistryClient, repository: str
) -> None:
    layer = blob("head me", size=3000)
    push_blobs(client, repository, layer)
    response = client.request("HEAD", f"/v2/{repository}/blobs/{layer.digest}", headers=IDENTITY)
    assert response.status_code == 200, describe(response)
    assert response.headers["Docker-Content-Digest"] == layer.digest
    assert response.headers["Content-Length"] == str(layer.size)
    assert response.content == b""


def test_get_of_a_nonexistent_blob_is_404_blob_unknown(client: RegistryClient, repository: str) -> None:
    push_simple_image(client, repository, "latest")
    response = client.request("GET", f"/v2/{repository}/blobs/{DUMMY_DIGEST}")
    assert_error(response, 404, "BLOB_UNKNOWN")


def test_get_of_a_blob_in_a_nonexistent_repository_is_404(client: RegistryClient, repository: str) -> None:
    response = client.request("GET", f"/v2/{repository}/never/blobs/{DUMMY_DIGEST}")
    assert response.status_code == 404, describe(response)
    assert set(error_codes(response)) & {"BLOB_UNKNOWN", "NAME_UNKNOWN"}, describe(response)


def test_get_of_an_existing_blob_is_200_with_the_exact_bytes(client: RegistryClient, repository: str) -> None:
    layer = blob("get me", size=70_000)
    push_blobs(client, repository, layer)
    response = client.request("GET", f"/v2/{repository}/blobs/{layer.digest}", headers=IDENTITY)
    assert response.status_code == 200, describe(response)
    assert response.content == layer.content
    # "If present, the value of this header MUST be a digest matching that of the response body."
    assert response.headers["Docker-Content-Digest"] == layer.digest
    assert response.headers["Content-Length"] == str(layer.size)


def test_a_blob_is_only_visible_in_the_repository_it_was_pushed_to(
    client: RegistryClient, repository: str
) -> None:
    layer = blob("scoped")
    push_blobs(client, repository, layer)
    push_simple_image(client, f"{repository}-other", "latest")
    for method in ("GET", "HEAD"):
        response = client.request(method, f"/v2/{repository}-other/blobs/{layer.digest}")
        assert response.status_code == 404, describe(response)


def test_an_empty_blob_can_be_pushed_and_pulled(client: RegistryClient, repository: str) -> None:
    digest = client.push_blob(repository, b"")
    assert digest == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    response = client.request("GET", f"/v2/{repository}/blobs/{digest}", headers=IDENTITY)
    assert response.status_code == 200, describe(response)
    assert response.content == b""
    assert response.headers["Content-Length"] == "0"
    assert response.headers["Docker-Content-Digest"] == digest


# "A registry SHOULD support the `Range` request header in accordance with RFC 9110."
@pytest.mark.parametrize(
    ("range_header", "first", "last"),
    [
        ("bytes=0-9", 0, 9),
        ("bytes=100-199", 100, 199),
        ("bytes=1000-", 1000, 1023),
        ("bytes=-24", 1000, 1023),
        ("bytes=1020-5000", 1020, 1023),
        ("bytes=0-0", 0, 0),
    ],
)
def test_a_blob_range_request_is_206_with_content_range(
    client: RegistryClient, repository: str, range_header: str, first: int, last: int
) -> None:
    layer = blob("ranged", size=1024)
    push_blobs(client, repository, layer)
    response = client.request(
        "GET", f"/v2/{repository}/blobs/{layer.digest}", headers={"Range": range_header, **IDENTITY}
    )
    assert response.status_code == 206, describe(response)
    assert response.headers["Content-Range"] == f"bytes {first}-{last}/1024"
    assert response.headers["Content-Length"] == str(last - first + 1)
    assert response.content == layer.content[first : last + 1]


@pytest.mark.parametrize("range_header", ["bytes=1024-", "bytes=5000-6000"])
def test_an_unsatisfiable_blob_range_is_416(
    client: RegistryClient, repository: str, range_header: str
) -> None:
    layer = blob("ranged", size=1024)
    push_blobs(client, repository, layer)
    response = client.request(
        "GET", f"/v2/{repository}/blobs/{layer.digest}", headers={"Range": range_header}
    )
    assert response.status_code == 416, describe(response)
    # RFC 9110 §15.5.17: the 416 response SHOULD carry "Content-Range: bytes */<length>".
    assert response.headers["Content-Range"] == "bytes */1024"


# --- manifests --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("by", ["tag", "digest"])
def test_an_existing_manifest_is_200_with_digest_type_and_length(
    client: RegistryClient, repository: str, method: str, by: str
) -> None:
    manifest, digest, _, _ = push_simple_image(client, repository, "tagtest0")
    reference = "tagtest0" if by == "tag" else digest
    response = client.request(
        method, f"/v2/{repository}/manifests/{reference}", headers={"Accept": OCI_MANIFEST, **IDENTITY}
    )
    assert response.status_code == 200, describe(response)
    assert response.headers["Docker-Content-Digest"] == digest
    assert response.headers["Content-Type"] == OCI_MANIFEST
    assert response.headers["Content-Length"] == str(len(manifest))
    assert response.content == (manifest if method == "GET" else b"")


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_the_official_nonexistent_manifest_reference_is_404(
    client: RegistryClient, repository: str, method: str
) -> None:
    push_simple_image(client, repository, "latest")
    response = client.request(method, f"/v2/{repository}/manifests/{NONEXISTENT_REFERENCE}")
    assert response.status_code == 404, describe(response)


@pytest.mark.parametrize("reference", ["missing", DUMMY_DIGEST])
def test_a_nonexistent_manifest_is_404_manifest_unknown(
    client: RegistryClient, repository: str, reference: str
) -> None:
    push_simple_image(client, repository, "latest")
    response = client.request("GET", f"/v2/{repository}/manifests/{reference}")
    assert_error(response, 404, "MANIFEST_UNKNOWN")
    response = client.request("HEAD", f"/v2/{repository}/manifests/{reference}")
    assert response.status_code == 404, describe(response)


def test_pulling_a_nonexistent_repository_is_404(client: RegistryClient, repository: str) -> None:
    # "An attempt to pull a nonexistent repository MUST return response code `404 Not Found`."
    response = client.request("GET", f"/v2/{repository}/manifests/latest")
    assert response.status_code == 404, describe(response)
    assert set(error_codes(response)) & {"NAME_UNKNOWN", "MANIFEST_UNKNOWN"}, describe(response)


def test_a_malformed_digest_reference_is_400_with_a_spec_error_code_or_404(
    client: RegistryClient, repository: str
) -> None:
    # 01_pull "Error codes": GET …/manifests/sha256:totallywrong → 400 (with an OCI error) or 404.
    push_simple_image(client, repository, "latest")
    response = client.request(
        "GET",
        f"/v2/{repository}/manifests/sha256:totallywrong",
        headers={"Content-Type": OCI_MANIFEST},
        data=b"blablabla",
    )
    assert response.status_code in (400, 404), describe(response)
    if response.status_code == 400:
        assert error_codes(response)[0] in SPEC_ERROR_CODES


def test_a_manifest_is_served_in_the_exact_bytes_it_was_pushed_in(
    client: RegistryClient, repository: str
) -> None:
    # "The registry MUST store the manifest in the exact byte representation provided by the client."
    config = blob("config", OCI_CONFIG)
    layer = blob("layer")
    push_blobs(client, repository, config, layer)
    manifest = (
        b'{ "layers" : [ %s ],\r\n\t"config":%s , "schemaVersion":2,"mediaType":"%s",'
        b'"annotations":{"z":"\\u00e9t\\u00e9","a":"1"}   }\n\n'
        % (
            json_bytes(layer.descriptor()),
            json_bytes(config.descriptor()),
            OCI_MANIFEST.encode(),
        )
    )
    digest = digest_of(manifest)
    response = client.push_manifest(repository, "odd-bytes", manifest)
    assert response.headers["Docker-Content-Digest"] == digest
    for reference in ("odd-bytes", digest):
        response = client.request("GET", f"/v2/{repository}/manifests/{reference}")
        assert response.status_code == 200, describe(response)
        assert response.content == manifest
        assert response.headers["Docker-Content-Digest"] == digest


def json_bytes(document: object) -> bytes:
    return json.dumps(document).encode()


def _docker_image(client: RegistryClient, repository: str) -> bytes:
    config = blob("docker config", DOCKER_CONFIG)
    layer = blob("docker layer", DOCKER_LAYER)
    push_blobs(client, repository, config, layer)
    return image_manifest(config.descriptor(), [layer.descriptor()], media_type=DOCKER_MANIFEST)


def test_a_docker_v2_schema2_manifest_is_served_with_its_media_type(
    client: RegistryClient, repository: str
) -> None:
    manifest = _docker_image(client, repository)
    client.push_manifest(repository, "docker", manifest, DOCKER_MANIFEST)
    response = client.request(
        "GET", f"/v2/{repository}/manifests/docker", headers={"Accept": DOCKER_MANIFEST}
    )
    assert response.status_code == 200, describe(response)
    assert response.headers["Content-Type"] == DOCKER_MANIFEST
    assert response.content == manifest


@pytest.mark.parametrize(
    ("index_type", "child_type"), [(OCI_INDEX, OCI_MANIFEST), (DOCKER_MANIFEST_LIST, DOCKER_MANIFEST)]
)
def test_an_index_is_served_with_its_media_type(
    client: RegistryClient, repository: str, index_type: str, child_type: str
) -> None:
    if child_type == DOCKER_MANIFEST:
        child = _docker_image(client, repository)
    else:
        child, _, _, _ = push_simple_image(client, repository, label="child")
    client.push_manifest(repository, digest_of(child), child, child_type)
    index = image_index(
        [
            {
                "mediaType": child_type,
                "digest": digest_of(child),
                "size": len(child),
                "platform": {"architecture": "amd64", "os": "linux"},
            }
        ],
        media_type=index_type,
    )
    client.push_manifest(repository, "multi", index, index_type)
    for method in ("GET", "HEAD"):
        response = client.request(
            method, f"/v2/{repository}/manifests/multi", headers={"Accept": f"{index_type}, {child_type}"}
        )
        assert response.status_code == 200, describe(response)
        assert response.headers["Content-Type"] == index_type
        assert response.headers["Docker-Content-Digest"] == digest_of(index)
    assert client.request("GET", f"/v2/{repository}/manifests/multi").content == index


def test_content_type_parameters_are_ignored_on_push_and_not_served(
    client: RegistryClient, repository: str
) -> None:
    # "The registry SHOULD ignore parameters on the `Content-Type` header."
    # "The registry SHOULD NOT include parameters on the `Content-Type` header."
    config = blob("config", OCI_CONFIG)
    layer = blob("layer")
    push_blobs(client, repository, config, layer)
    manifest = image_manifest(config.descriptor(), [layer.descriptor()])
    response = client.request(
        "PUT",
        f"/v2/{repository}/manifests/params",
        data=manifest,
        headers={"Content-Type": f"{OCI_MANIFEST}; charset=utf-8"},
    )
    assert response.status_code == 201, describe(response)
    response = client.request("GET", f"/v2/{repository}/manifests/params")
    assert response.status_code == 200, describe(response)
    assert response.headers["Content-Type"] == OCI_MANIFEST


def test_an_image_whose_config_and_layers_are_pulled_back_matches_what_was_pushed(
    client: RegistryClient, repository: str
) -> None:
    image = client.push_image(repository, "full", layers=3, seed="pull")
    response = client.request("GET", f"/v2/{repository}/manifests/full", headers={"Accept": OCI_MANIFEST})
    assert response.status_code == 200, describe(response)
    document = response.json()
    assert (
        client.request("GET", f"/v2/{repository}/blobs/{document['config']['digest']}").content
        == image.config
    )
    pulled = [
        client.request("GET", f"/v2/{repository}/blobs/{d['digest']}").content for d in document["layers"]
    ]
    assert pulled == list(image.layers)
    assert [d["mediaType"] for d in document["layers"]] == [OCI_LAYER] * 3
