"""Repository names, references and digests that the grammar refuses, and the error body format.

spec.md: "`<name>` MUST match the following regular expression:
`[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(\\/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*`".
Malformed input is a client error: 4xx with a spec-shaped body, never a 5xx.
"""

from __future__ import annotations

import json

import pytest

from tests.registry_client import RegistryClient
from tests.servers import Gateway

from .oci import (
    assert_error,
    blob,
    describe,
    digest_of,
    error_codes,
    push_blobs,
    push_simple_image,
    raw_request,
)

VALID_NAMES = ["a", "a0/b1", "a.b", "a_b", "a__b", "a-b", "a--b", "a---b", "x/y/z/w", "0"]
INVALID_NAMES = [
    "A",
    "test/Upper",
    "a_",
    "_a",
    "a.",
    "a..b",
    "a___b",
    "a._b",
    "a-_b",
    "-a",
    "a/-b",
    "a/",
    "a//b",
]


@pytest.mark.parametrize("suffix", VALID_NAMES)
def test_every_name_the_grammar_allows_can_be_pushed_and_pulled(
    client: RegistryClient, repository: str, suffix: str
) -> None:
    name = f"{repository}/{suffix}"
    manifest, digest, _, _ = push_simple_image(client, name, "latest")
    response = client.request("GET", f"/v2/{name}/manifests/latest")
    assert response.status_code == 200, describe(response)
    assert response.headers["Docker-Content-Digest"] == digest
    assert response.content == manifest
    tags = client.request("GET", f"/v2/{name}/tags/list")
    assert tags.json() == {"name": name, "tags": ["latest"]}


@pytest.mark.parametrize("suffix", INVALID_NAMES)
@pytest.mark.parametrize(
    ("method", "tail"),
    [
        ("GET", "tags/list"),
        ("GET", "manifests/latest"),
        ("PUT", "manifests/latest"),
        ("HEAD", f"blobs/{digest_of(b'x')}"),
        ("POST", "blobs/uploads/"),
    ],
)
def test_a_name_outside_the_grammar_is_400_name_invalid(
    client: RegistryClient, repository: str, suffix: str, method: str, tail: str
) -> None:
    response = client.request(
        method, f"/v2/{repository}/{suffix}/{tail}", data=b"{}" if method == "PUT" else None
    )
    assert response.status_code == 400, describe(response)
    if method != "HEAD":
        assert_error(response, 400, "NAME_INVALID")


def test_a_very_long_name_is_a_client_error(client: RegistryClient) -> None:
    # v1.1 only advises against names that push "<host>/<name>" past 255 characters.
    name = "n" * 120 + "/" + "m" * 140
    response = client.request("GET", f"/v2/{name}/tags/list")
    assert response.status_code in (400, 404), describe(response)
    assert set(error_codes(response)) & {"NAME_INVALID", "NAME_UNKNOWN"}, describe(response)


@pytest.mark.parametrize(
    "path",
    [
        "/v2/../v2/test/x/tags/list",
        "/v2/test/../etc/tags/list",
        "/v2/test/%2e%2e/etc/tags/list",
        "/v2/test/%2E%2E/%2e%2e/blobs/uploads/",
        "/v2/test/./x/tags/list",
        "/v2/%2e%2e/%2e%2e/etc/passwd",
        "/v2/test/x%2f..%2f..%2fy/tags/list",
        "/v2/test%00/tags/list",
        "/v2/test/x/manifests/..%2f..%2flatest",
        "/v2/test/x/blobs/sha256:..%2f..%2f" + "a" * 58,
        "/v2/test/x/blobs/uploads/..%2f..%2fsomething",
    ],
)
def test_traversal_attempts_are_client_errors(gateway: Gateway, path: str) -> None:
    for method in ("GET", "HEAD", "PUT", "DELETE", "PATCH"):
        response = raw_request(gateway.url, method, path)
        assert 400 <= response.status < 500, f"{method} {path} -> {response.status} {response.body[:300]!r}"


def test_dot_dot_segments_cannot_reach_another_repository(
    client: RegistryClient, gateway: Gateway, repository: str
) -> None:
    item = blob("secret")
    push_blobs(client, f"{repository}/secret", item)
    for path in (
        f"/v2/{repository}/public/../secret/blobs/{item.digest}",
        f"/v2/{repository}/public/%2e%2e/secret/blobs/{item.digest}",
        f"/v2/{repository}/public/%2E%2E/secret/blobs/{item.digest}",
    ):
        response = raw_request(gateway.url, "GET", path)
        assert response.status in (400, 404), f"{path} -> {response.status}"
        assert item.content not in response.body


@pytest.mark.parametrize(
    "digest",
    [
        "sha256:xyz",
        "sha256:" + "A" * 64,
        "sha256:" + "a" * 63,
        "sha256:" + "a" * 65,
        "sha256:",
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        "sha512:" + "a" * 64,
        ":" + "a" * 64,
        "sha256" + "a" * 64,
    ],
)
@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE"])
def test_a_malformed_blob_digest_is_a_client_error(
    client: RegistryClient, repository: str, digest: str, method: str
) -> None:
    push_simple_image(client, repository, "latest")
    response = client.request(method, f"/v2/{repository}/blobs/{digest}")
    assert response.status_code in (400, 404), describe(response)
    if method != "HEAD":
        assert set(error_codes(response)) & {"DIGEST_INVALID", "BLOB_UNKNOWN"}, describe(response)


@pytest.mark.parametrize(
    "digest",
    ["sha256:xyz", "md5:d41d8cd98f00b204e9800998ecf8427e", "sha256:" + "a" * 63, "sha256:" + "A" * 64],
)
def test_a_malformed_digest_on_upload_is_400_digest_invalid(
    client: RegistryClient, repository: str, digest: str
) -> None:
    response = client.request(
        "POST",
        f"/v2/{repository}/blobs/uploads/",
        params={"digest": digest},
        data=b"content",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert_error(response, 400, "DIGEST_INVALID")


@pytest.mark.parametrize(
    "reference",
    ["sha256:xyz", "sha256:" + "a" * 63, "md5:d41d8cd98f00b204e9800998ecf8427e", "x" * 129, "-tag"],
)
@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE"])
def test_a_malformed_manifest_reference_is_a_client_error(
    client: RegistryClient, repository: str, reference: str, method: str
) -> None:
    push_simple_image(client, repository, "latest")
    response = client.request(method, f"/v2/{repository}/manifests/{reference}")
    assert response.status_code in (400, 404), describe(response)
    if method != "HEAD":
        error_codes(response)


def test_unknown_endpoints_are_404(client: RegistryClient, repository: str) -> None:
    push_simple_image(client, repository, "latest")
    for path in (f"/v2/{repository}/nothing-here", f"/v2/{repository}/manifests/", "/v3/", "/v2/_nothing"):
        response = client.request("GET", path)
        assert response.status_code == 404, describe(response)


def test_unsupported_methods_are_client_errors(client: RegistryClient, repository: str) -> None:
    _, digest, config, _ = push_simple_image(client, repository, "latest")
    for method, path in (
        ("POST", f"/v2/{repository}/manifests/latest"),
        ("PATCH", f"/v2/{repository}/manifests/latest"),
        ("PUT", f"/v2/{repository}/blobs/{config.digest}"),
        ("POST", f"/v2/{repository}/tags/list"),
        ("DELETE", f"/v2/{repository}/tags/list"),
        ("PUT", f"/v2/{repository}/referrers/{digest}"),
        ("DELETE", "/v2/"),
    ):
        response = client.request(method, path, data=b"{}")
        assert response.status_code in (404, 405), describe(response)


def test_error_bodies_have_the_spec_shape(client: RegistryClient, repository: str) -> None:
    push_simple_image(client, repository, "latest")
    for response in (
        client.request("GET", f"/v2/{repository}/manifests/missing"),
        client.request("GET", f"/v2/{repository}/blobs/{digest_of(b'missing')}"),
        client.request("GET", f"/v2/{repository}-missing/tags/list"),
        client.request("GET", f"/v2/{repository}/blobs/uploads/00000000-0000-0000-0000-000000000000"),
    ):
        assert 400 <= response.status_code < 500, describe(response)
        body = json.loads(response.content)
        assert set(body) == {"errors"}, describe(response)
        for error in body["errors"]:
            # The brief's error shape: code, message and detail (detail "MAY contain arbitrary JSON").
            assert set(error) <= {"code", "message", "detail"}, describe(response)
            assert {"code", "message"} <= set(error), describe(response)
            assert error["message"], describe(response)
        error_codes(response)
