"""One server, several registries selected by Host: each is a registry of its own in the spec's
sense ("mounted from another repository within the same registry"), so nothing crosses over."""

from __future__ import annotations

from tests.registry_client import RegistryClient

from .oci import (
    OCI_MANIFEST,
    assert_error,
    blob,
    describe,
    digest_of,
    image_manifest,
    path_of,
    push_blobs,
    push_simple_image,
)


def test_the_api_version_check_answers_on_every_registry(
    client: RegistryClient, alpha: RegistryClient, beta: RegistryClient
) -> None:
    for registry in (client, alpha, beta):
        response = registry.request("GET", "/v2/")
        assert response.status_code == 200, describe(response)
        assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_a_blob_pushed_to_one_registry_is_unknown_to_the_others(
    client: RegistryClient, alpha: RegistryClient, beta: RegistryClient, repository: str
) -> None:
    item = blob("alpha only")
    push_blobs(alpha, repository, item)
    assert alpha.request("HEAD", f"/v2/{repository}/blobs/{item.digest}").status_code == 200
    for other in (beta, client):
        assert other.request("HEAD", f"/v2/{repository}/blobs/{item.digest}").status_code == 404
        response = other.request("GET", f"/v2/{repository}/blobs/{item.digest}")
        assert response.status_code == 404, describe(response)
        assert item.content not in response.content


def test_a_manifest_and_its_tags_stay_in_their_registry(
    client: RegistryClient, alpha: RegistryClient, beta: RegistryClient, repository: str
) -> None:
    _, digest, _, _ = push_simple_image(alpha, repository, "latest")
    for other in (beta, client):
        for reference in ("latest", digest):
            assert other.request("GET", f"/v2/{repository}/manifests/{reference}").status_code == 404
        assert_error(other.request("GET", f"/v2/{repository}/tags/list"), 404, "NAME_UNKNOWN")


def test_the_same_repository_name_holds_different_content_per_registry(
    alpha: RegistryClient, beta: RegistryClient, repository: str
) -> None:
    alpha_manifest, alpha_digest, _, _ = push_simple_image(alpha, repository, "latest", label="alpha")
    beta_manifest, beta_digest, _, _ = push_simple_image(beta, repository, "latest", label="beta")
    assert alpha_digest != beta_digest
    assert alpha.request("GET", f"/v2/{repository}/manifests/latest").content == alpha_manifest
    assert beta.request("GET", f"/v2/{repository}/manifests/latest").content == beta_manifest
    assert alpha.request("DELETE", f"/v2/{repository}/manifests/{alpha_digest}").status_code == 202
    assert beta.request("GET", f"/v2/{repository}/manifests/latest").content == beta_manifest


def test_a_mount_cannot_reach_into_another_registry(
    alpha: RegistryClient, beta: RegistryClient, repository: str
) -> None:
    item = blob("mount across")
    push_blobs(alpha, repository, item)
    target = f"{repository}/stolen"
    response = beta.request(
        "POST", f"/v2/{target}/blobs/uploads/", params={"mount": item.digest, "from": repository}
    )
    assert response.status_code == 202, describe(response)
    assert path_of(response.headers["Location"]).startswith(f"/v2/{target}/blobs/uploads/")
    assert beta.request("HEAD", f"/v2/{target}/blobs/{item.digest}").status_code == 404
    # Within alpha the same mount works.
    response = alpha.request(
        "POST", f"/v2/{target}/blobs/uploads/", params={"mount": item.digest, "from": repository}
    )
    assert response.status_code == 201, describe(response)


def test_a_manifest_cannot_reference_blobs_of_another_registry(
    alpha: RegistryClient, beta: RegistryClient, repository: str
) -> None:
    manifest, _, _, _ = push_simple_image(alpha, repository, "latest")
    beta.push_blob(repository, b"beta repository exists")
    response = beta.request(
        "PUT", f"/v2/{repository}/manifests/latest", data=manifest, headers={"Content-Type": OCI_MANIFEST}
    )
    assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")


def test_an_upload_session_cannot_be_used_through_another_registry(
    alpha: RegistryClient, beta: RegistryClient, repository: str
) -> None:
    item = blob("cross-registry upload")
    location = alpha.start_upload(repository)
    for method in ("GET", "PATCH"):
        response = beta.request(method, location, data=item.content if method == "PATCH" else None)
        assert_error(response, 404, "BLOB_UPLOAD_UNKNOWN")
    response = beta.request("PUT", location, params={"digest": item.digest}, data=item.content)
    assert_error(response, 404, "BLOB_UPLOAD_UNKNOWN")
    assert beta.request("HEAD", f"/v2/{repository}/blobs/{item.digest}").status_code == 404
    # The session is intact in its own registry.
    response = alpha.request("PUT", location, params={"digest": item.digest}, data=item.content)
    assert response.status_code == 201, describe(response)


def test_the_catalog_lists_only_the_registrys_repositories(
    client: RegistryClient, alpha: RegistryClient, beta: RegistryClient, repository: str
) -> None:
    push_simple_image(alpha, f"{repository}/in-alpha", "latest")
    push_simple_image(beta, f"{repository}/in-beta", "latest")

    def catalog(registry: RegistryClient) -> list[str]:
        response = registry.request("GET", "/v2/_catalog", params={"n": 10_000})
        assert response.status_code == 200, describe(response)
        return response.json()["repositories"]

    assert f"{repository}/in-alpha" in catalog(alpha)
    assert f"{repository}/in-alpha" not in catalog(beta)
    assert f"{repository}/in-beta" in catalog(beta)
    assert f"{repository}/in-beta" not in catalog(alpha)
    assert not {f"{repository}/in-alpha", f"{repository}/in-beta"} & set(catalog(client))


def test_referrers_stay_in_their_registry(
    alpha: RegistryClient, beta: RegistryClient, repository: str
) -> None:
    subject, subject_digest, config, _ = push_simple_image(alpha, repository, "latest")
    referrer = image_manifest(
        config.descriptor(),
        [],
        artifact_type="application/vnd.example",
        subject={"mediaType": OCI_MANIFEST, "digest": subject_digest, "size": len(subject)},
    )
    alpha.push_manifest(repository, digest_of(referrer), referrer)
    response = alpha.request("GET", f"/v2/{repository}/referrers/{subject_digest}")
    assert [d["digest"] for d in response.json()["manifests"]] == [digest_of(referrer)]
    push_simple_image(beta, repository, "latest", label="beta")
    response = beta.request("GET", f"/v2/{repository}/referrers/{subject_digest}")
    assert response.status_code == 200, describe(response)
    assert response.json()["manifests"] == []
