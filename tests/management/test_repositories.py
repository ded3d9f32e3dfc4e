"""`…/repositories` and `…/artifacts`: content, usage counters, deletion, storage usage."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from tests.registry_client import OCI_INDEX, RegistryClient, digest_of
from tests.servers import ADMIN_PASSWORD, ADMIN_USER, Gateway, ocigate

from .conftest import Api, v2_client

ADMIN = (ADMIN_USER, ADMIN_PASSWORD)


def _repository(registry: dict[str, Any], name: str) -> str:
    return f"{registry['href']}/repositories/{quote(name, safe='')}"


def _client(gateway: Gateway, registry: dict[str, Any]) -> RegistryClient:
    return v2_client(gateway, registry, ADMIN)


def test_repositories_with_artifact_and_usage_counts(
    api: Api, registry: dict[str, Any], management_gateway: Gateway
) -> None:
    client = _client(management_gateway, registry)
    client.push_image("team/app", "v1", seed="1")
    image = client.push_image("team/app", "v2", seed="2")
    client.push_image("solo", "latest")
    for _ in range(3):
        assert client.request("GET", "/v2/team/app/manifests/v2").status_code == 200
    assert client.request("HEAD", "/v2/team/app/manifests/v2").status_code == 200  # HEAD is no pull

    page = api.get(f"{registry['href']}/repositories").json()
    assert page["total"] == 2
    assert [item["id"] for item in page["items"]] == ["solo", "team/app"]
    team = page["items"][1]
    assert team["type"] == "repository"
    assert team["href"] == _repository(registry, "team/app")
    assert team["href"].endswith("/repositories/team%2Fapp")
    properties = team["properties"]
    assert properties["name"] == "team/app"
    assert properties["artifactCount"] == 2
    assert properties["pushCount"] == 2
    assert properties["pullCount"] == 3
    assert properties["lastPulledAt"] >= properties["lastPushedAt"]
    assert api.get(team["href"]).json() == team

    artifacts = api.get(f"{team['href']}/artifacts").json()
    assert artifacts["total"] == 2
    by_digest = {item["id"]: item for item in artifacts["items"]}
    artifact = by_digest[image.digest]
    assert artifact["href"] == f"{team['href']}/artifacts/{image.digest}"
    assert artifact["properties"] == {
        "digest": image.digest,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.oci.image.config.v1+json",  # the config's, as OCI says
        "kind": "image",
        "platforms": [],
        "children": [],
        "subject": None,
        "referrers": [],
        "tags": ["v2"],
        "size": len(image.manifest) + len(image.config) + sum(len(layer) for layer in image.layers),
    }
    assert api.get(artifact["href"]).json() == artifact
    missing = "sha256:" + "0" * 64
    assert api.get(f"{team['href']}/artifacts/{missing}").status_code == 404
    assert api.get(f"{team['href']}/artifacts/sha256:xyz").status_code == 400
    assert api.get(_repository(registry, "nothing/here")).status_code == 404
    assert api.get(_repository(registry, "Bad..Name")).status_code == 400


def test_an_index_lists_its_tags_and_size(
    api: Api, registry: dict[str, Any], management_gateway: Gateway
) -> None:
    client = _client(management_gateway, registry)
    child = client.push_image("multi", None)
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": child.digest,
                    "size": len(child.manifest),
                }
            ],
        }
    ).encode()
    client.push_manifest("multi", "latest", index, OCI_INDEX)
    client.push_manifest("multi", "stable", index, OCI_INDEX)
    artifact = api.get(f"{_repository(registry, 'multi')}/artifacts/{digest_of(index)}").json()
    assert artifact["properties"]["tags"] == ["latest", "stable"]
    assert artifact["properties"]["mediaType"] == OCI_INDEX
    assert artifact["properties"]["size"] == len(index) + len(child.manifest)


def test_cursor_pagination(api: Api, registry: dict[str, Any], management_gateway: Gateway) -> None:
    client = _client(management_gateway, registry)
    for i in range(5):
        client.push_image(f"many/r{i}", "v1", seed=str(i))
        client.push_image("many/r0", f"t{i}", seed=f"tag{i}")
    names: list[str] = []
    path: str | None = f"{registry['href']}/repositories?limit=2"
    while path is not None:
        page = api.get(path).json()
        assert page["total"] == 5
        assert len(page["items"]) <= 2
        names += [item["id"] for item in page["items"]]
        path = page["next"]
    assert names == [f"many/r{i}" for i in range(5)]

    digests: list[str] = []
    path = f"{_repository(registry, 'many/r0')}/artifacts?limit=4"
    while path is not None:
        page = api.get(path).json()
        digests += [item["id"] for item in page["items"]]
        path = page["next"]
    assert len(digests) == 6
    assert digests == sorted(digests)
    for bad in ("not-a-cursor!", "", "AAAA"):
        response = api.get(f"{registry['href']}/repositories", params={"cursor": bad})
        assert response.status_code == 400, bad
    assert api.get("/api/audit", params={"cursor": "eHl6"}).status_code == 400  # "xyz": not an entry id


def test_deleting_a_repository_deletes_its_content(
    api: Api, registry: dict[str, Any], management_gateway: Gateway
) -> None:
    client = _client(management_gateway, registry)
    image = client.push_image("doomed/app", "v1")
    keep = client.push_image("kept", "v1")
    upload = client.start_upload("doomed/app")  # a push in progress
    response = client.request(
        "PATCH", upload, data=b"partial", headers={"Content-Type": "application/octet-stream"}
    )
    assert response.status_code == 202
    location = _repository(registry, "doomed/app")
    assert client.request("GET", f"/v2/doomed/app/manifests/{image.digest}").status_code == 200  # cached now

    assert api.delete(location).status_code == 204
    gone = client.request("GET", client.location(response))
    assert gone.status_code == 404
    assert gone.json()["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"
    assert api.get(location).status_code == 404
    assert api.delete(location).status_code == 404
    assert [item["id"] for item in api.get(f"{registry['href']}/repositories").json()["items"]] == ["kept"]
    assert client.request("GET", "/v2/doomed/app/manifests/v1").status_code == 404
    assert client.request("GET", f"/v2/doomed/app/manifests/{image.digest}").status_code == 404
    assert client.request("HEAD", f"/v2/doomed/app/blobs/{digest_of(image.config)}").status_code == 404
    assert client.request("GET", f"/v2/kept/manifests/{keep.digest}").status_code == 200

    # the name can be pushed again, and starts from nothing
    client.push_image("doomed/app", "v2")
    again = api.get(location).json()["properties"]
    assert again["artifactCount"] == 1
    assert again["pushCount"] == 1


def test_storage_usage_counts_each_blob_once(
    api: Api, registry: dict[str, Any], management_gateway: Gateway
) -> None:
    client = _client(management_gateway, registry)
    image = client.push_image("one", "v1")
    once = len(image.config) + sum(len(layer) for layer in image.layers)
    assert api.get(registry["href"]).json()["properties"]["storageUsage"] == {"bytes": once}
    for blob in (image.config, *image.layers):  # the same blobs in another repository
        client.push_blob("two", blob)
    client.push_manifest("two", "v1", image.manifest)
    assert api.get(registry["href"]).json()["properties"]["storageUsage"] == {"bytes": once}
    assert api.delete(_repository(registry, "one")).status_code == 204
    assert api.get(registry["href"]).json()["properties"]["storageUsage"] == {"bytes": once}
    assert api.delete(_repository(registry, "two")).status_code == 204
    assert api.get(registry["href"]).json()["properties"]["storageUsage"] == {"bytes": 0}


def test_garbage_collection_frees_a_deleted_tags_bytes_and_reports_its_last_run(
    api: Api, registry: dict[str, Any], management_gateway: Gateway
) -> None:
    client = _client(management_gateway, registry)
    kept = client.push_image("gc/app", "kept", seed="kept")
    gone = client.push_image("gc/app", "gone", seed="gone")
    freed = len(gone.config) + sum(len(layer) for layer in gone.layers)
    before = api.get(registry["href"]).json()["properties"]
    assert before["lastGarbageCollection"] is None
    assert client.request("DELETE", "/v2/gc/app/manifests/gone").status_code == 202
    assert api.patch(registry["href"], {"deleteUntaggedManifests": True}).status_code == 200

    printed = ocigate(
        "gc",
        "--registry",
        registry["properties"]["name"],
        "--grace",
        "0",
        data_dir=management_gateway.data_dir,
    )
    assert f"removed 1 manifests, {1 + len(gone.layers)} blob links" in printed
    after = api.get(registry["href"]).json()["properties"]
    assert after["storageUsage"]["bytes"] == before["storageUsage"]["bytes"] - freed
    run = after["lastGarbageCollection"]
    assert (run["manifests"], run["links"]) == (1, 1 + len(gone.layers))
    assert run["bytes"] >= freed
    assert run["finishedAt"] >= run["startedAt"]
    assert client.request("GET", f"/v2/gc/app/manifests/{gone.digest}").status_code == 404
    assert client.request("GET", f"/v2/gc/app/blobs/{digest_of(kept.layers[0])}").content == kept.layers[0]


def test_a_push_past_the_registry_quota_is_403_denied(
    api: Api, registry: dict[str, Any], management_gateway: Gateway
) -> None:
    client = _client(management_gateway, registry)
    client.push_image("quota/app", "v1", seed="q")
    used = api.get(registry["href"]).json()["properties"]["storageUsage"]["bytes"]
    assert api.patch(registry["href"], {"storageQuotaBytes": used + 10}).status_code == 200
    refused = client.post_blob("quota/app", b"x" * 100)
    assert refused.status_code == 403
    error = refused.json()["errors"][0]
    assert error["code"] == "DENIED"
    assert f"may store {used + 10} bytes and stores {used}" in error["message"]
    assert client.post_blob("quota/app", b"y" * 10).status_code == 201  # exactly to the quota
    started = client.request("POST", "/v2/quota/app/blobs/uploads/")
    assert started.status_code == 403  # at the quota: no upload starts
    assert api.patch(registry["href"], {"storageQuotaBytes": None}).status_code == 200
    assert client.post_blob("quota/app", b"x" * 100).status_code == 201
