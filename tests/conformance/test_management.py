"""Content management: deleting tags, manifests and blobs (end-9, end-10) and the official
04_management checks."""

from __future__ import annotations

from tests.registry_client import RegistryClient

from .oci import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
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

TAG = "tagtest0"


def tags_of(client: RegistryClient, repository: str) -> list[str]:
    response = client.request("GET", f"/v2/{repository}/tags/list")
    assert response.status_code == 200, describe(response)
    return response.json()["tags"]


def test_deleting_a_tag_is_202_and_leaves_the_manifest(client: RegistryClient, repository: str) -> None:
    # "Upon success, the registry MUST respond with a `202 Accepted` code."
    # "Once deleted, a `GET` to `/v2/<name>/manifests/<tag>` will return a 404."
    manifest, digest, _, _ = push_simple_image(client, repository, "tagtest0")
    client.push_manifest(repository, "keep", manifest)
    response = client.request("DELETE", f"/v2/{repository}/manifests/tagtest0")
    assert response.status_code == 202, describe(response)
    assert_error(client.request("GET", f"/v2/{repository}/manifests/tagtest0"), 404, "MANIFEST_UNKNOWN")
    assert client.request("HEAD", f"/v2/{repository}/manifests/tagtest0").status_code == 404
    assert client.request("GET", f"/v2/{repository}/manifests/{digest}").content == manifest
    assert client.request("GET", f"/v2/{repository}/manifests/keep").content == manifest
    assert tags_of(client, repository) == ["keep"]


def test_deleting_an_unknown_tag_is_404(client: RegistryClient, repository: str) -> None:
    push_simple_image(client, repository, "present")
    assert_error(client.request("DELETE", f"/v2/{repository}/manifests/absent"), 404, "MANIFEST_UNKNOWN")


def test_deleting_a_manifest_by_digest_removes_it_and_its_tags(
    client: RegistryClient, repository: str
) -> None:
    # "Once deleted, a `GET` to `/v2/<name>/manifests/<digest>` and any tag pointing to that digest
    # will return a 404."
    manifest, digest, _, _ = push_simple_image(client, repository, "one")
    client.push_manifest(repository, "two", manifest)
    other, other_digest, _, _ = push_simple_image(client, repository, "other", label="other")
    before = tags_of(client, repository)
    response = client.request("DELETE", f"/v2/{repository}/manifests/{digest}")
    assert response.status_code == 202, describe(response)
    for reference in (digest, "one", "two"):
        assert_error(
            client.request("GET", f"/v2/{repository}/manifests/{reference}"), 404, "MANIFEST_UNKNOWN"
        )
        assert client.request("HEAD", f"/v2/{repository}/manifests/{reference}").status_code == 404
    # 04_management "GET request to tags list should reflect manifest deletion"
    after = tags_of(client, repository)
    assert len(after) < len(before)
    assert after == ["other"]
    assert client.request("GET", f"/v2/{repository}/manifests/{other_digest}").content == other


def test_deleting_a_manifest_twice_is_404_the_second_time(client: RegistryClient, repository: str) -> None:
    # 04_management "DELETE request to manifest (digest) should yield 202 response unless already deleted"
    _, digest, _, _ = push_simple_image(client, repository, "tagtest0")
    assert client.request("DELETE", f"/v2/{repository}/manifests/tagtest0").status_code == 202
    assert client.request("DELETE", f"/v2/{repository}/manifests/{digest}").status_code == 202
    assert_error(client.request("DELETE", f"/v2/{repository}/manifests/{digest}"), 404, "MANIFEST_UNKNOWN")


def test_deleting_a_manifest_of_a_nonexistent_repository_is_404(
    client: RegistryClient, repository: str
) -> None:
    # "If the repository does not exist, the response MUST return `404 Not Found`."
    response = client.request("DELETE", f"/v2/{repository}/manifests/{digest_of(b'nothing')}")
    assert response.status_code == 404, describe(response)
    assert set(error_codes(response)) & {"NAME_UNKNOWN", "MANIFEST_UNKNOWN"}, describe(response)


def test_a_deleted_manifest_can_be_pushed_again(client: RegistryClient, repository: str) -> None:
    # The official suite deletes manifests[1] in the pull teardown and pushes it again in push.
    manifest, digest, config, layer = push_simple_image(client, repository, "again")
    assert client.request("GET", f"/v2/{repository}/manifests/{digest}").status_code == 200
    assert client.request("DELETE", f"/v2/{repository}/manifests/{digest}").status_code == 202
    for item in (config, layer):
        assert client.request("DELETE", f"/v2/{repository}/blobs/{item.digest}").status_code == 202
    assert client.request("GET", f"/v2/{repository}/manifests/again").status_code == 404
    push_blobs(client, repository, config, layer)
    client.push_manifest(repository, "again", manifest)
    for reference in ("again", digest):
        response = client.request("GET", f"/v2/{repository}/manifests/{reference}")
        assert response.status_code == 200, describe(response)
        assert response.content == manifest
    assert tags_of(client, repository) == ["again"]


def test_deleting_a_blob_is_202_then_404(client: RegistryClient, repository: str) -> None:
    # "Upon success, the registry MUST respond with code `202 Accepted`."
    # "If the blob is not found, a `404 Not Found` code MUST be returned."
    item = blob("deletable")
    push_blobs(client, repository, item)
    response = client.request("DELETE", f"/v2/{repository}/blobs/{item.digest}")
    assert response.status_code == 202, describe(response)
    assert_error(client.request("GET", f"/v2/{repository}/blobs/{item.digest}"), 404, "BLOB_UNKNOWN")
    assert client.request("HEAD", f"/v2/{repository}/blobs/{item.digest}").status_code == 404
    assert_error(client.request("DELETE", f"/v2/{repository}/blobs/{item.digest}"), 404, "BLOB_UNKNOWN")


def test_deleting_an_unknown_blob_is_404(client: RegistryClient, repository: str) -> None:
    push_simple_image(client, repository, "latest")
    assert_error(
        client.request("DELETE", f"/v2/{repository}/blobs/{digest_of(b'never')}"), 404, "BLOB_UNKNOWN"
    )


def test_blobs_stay_deletable_after_their_manifest_is_deleted(
    client: RegistryClient, repository: str
) -> None:
    # 03_discovery teardown: after the manifests go, deleting their config and layer must be 2xx
    # (404 is not accepted there): deleting a manifest must not take its blobs with it.
    _, digest, config, layer = push_simple_image(client, repository, "tagged")
    assert client.request("DELETE", f"/v2/{repository}/manifests/{digest}").status_code == 202
    for item in (config, layer):
        assert client.request("GET", f"/v2/{repository}/blobs/{item.digest}").content == item.content
        response = client.request("DELETE", f"/v2/{repository}/blobs/{item.digest}")
        assert response.status_code == 202, describe(response)


def test_deleting_a_blob_in_one_repository_leaves_it_in_another(
    client: RegistryClient, repository: str
) -> None:
    item = blob("shared")
    push_blobs(client, repository, item)
    push_blobs(client, f"{repository}-twin", item)
    assert client.request("DELETE", f"/v2/{repository}/blobs/{item.digest}").status_code == 202
    assert client.request("GET", f"/v2/{repository}-twin/blobs/{item.digest}").content == item.content


def test_a_deleted_blob_can_be_uploaded_again(client: RegistryClient, repository: str) -> None:
    item = blob("phoenix", size=4096)
    push_blobs(client, repository, item)
    assert client.request("DELETE", f"/v2/{repository}/blobs/{item.digest}").status_code == 202
    assert client.request("HEAD", f"/v2/{repository}/blobs/{item.digest}").status_code == 404
    push_blobs(client, repository, item)
    response = client.request("GET", f"/v2/{repository}/blobs/{item.digest}")
    assert response.status_code == 200, describe(response)
    assert response.content == item.content


def test_a_blob_deleted_from_a_repository_cannot_be_referenced_there(
    client: RegistryClient, repository: str
) -> None:
    config = blob("config", OCI_CONFIG)
    layer = blob("layer")
    push_blobs(client, repository, config, layer)
    assert client.request("DELETE", f"/v2/{repository}/blobs/{layer.digest}").status_code == 202
    body = image_manifest(config.descriptor(), [layer.descriptor()])
    response = client.request(
        "PUT", f"/v2/{repository}/manifests/after-delete", data=body, headers={"Content-Type": OCI_MANIFEST}
    )
    assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")


def test_a_manifest_can_be_deleted_after_the_index_listing_it(
    client: RegistryClient, repository: str
) -> None:
    child, child_digest, _, _ = push_simple_image(client, repository, label="child")
    index = image_index([{"mediaType": OCI_MANIFEST, "digest": child_digest, "size": len(child)}])
    client.push_manifest(repository, "multi", index, OCI_INDEX)
    assert client.request("DELETE", f"/v2/{repository}/manifests/{digest_of(index)}").status_code == 202
    assert client.request("DELETE", f"/v2/{repository}/manifests/{child_digest}").status_code == 202
    assert client.request("GET", f"/v2/{repository}/manifests/multi").status_code == 404
    assert client.request("GET", f"/v2/{repository}/manifests/{child_digest}").status_code == 404


def test_a_tag_deleted_then_pushed_again_points_to_the_new_manifest(
    client: RegistryClient, repository: str
) -> None:
    push_simple_image(client, repository, "reused", label="first")
    assert client.request("DELETE", f"/v2/{repository}/manifests/reused").status_code == 202
    second, second_digest, _, _ = push_simple_image(client, repository, "reused", label="second")
    response = client.request("GET", f"/v2/{repository}/manifests/reused")
    assert response.status_code == 200, describe(response)
    assert response.headers["Docker-Content-Digest"] == second_digest
    assert response.content == second


def test_tags_list_stays_200_and_empty_once_every_manifest_is_deleted(
    client: RegistryClient, repository: str
) -> None:
    # 04_management "GET request to tags list should reflect manifest deletion" expects 200 after
    # the repository's last tagged manifest is gone (its blobs are still there).
    _, digest, _, _ = push_simple_image(client, repository, TAG)
    assert client.request("DELETE", f"/v2/{repository}/manifests/{TAG}").status_code == 202
    assert client.request("DELETE", f"/v2/{repository}/manifests/{digest}").status_code == 202
    response = client.request("GET", f"/v2/{repository}/tags/list")
    assert response.status_code == 200, describe(response)
    assert response.json() == {"name": repository, "tags": []}


def test_a_mounted_blob_survives_deletion_from_its_source(client: RegistryClient, repository: str) -> None:
    item = blob("mounted then deleted at the source")
    push_blobs(client, repository, item)
    target = f"{repository}/target"
    response = client.request(
        "POST", f"/v2/{target}/blobs/uploads/", params={"mount": item.digest, "from": repository}
    )
    assert response.status_code == 201, describe(response)
    assert client.request("DELETE", f"/v2/{repository}/blobs/{item.digest}").status_code == 202
    assert client.request("HEAD", f"/v2/{repository}/blobs/{item.digest}").status_code == 404
    response = client.request("GET", f"/v2/{target}/blobs/{item.digest}")
    assert response.status_code == 200, describe(response)
    assert response.content == item.content
