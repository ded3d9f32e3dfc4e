"""What the API gives the console: repositories by name prefix with their size, artifacts with
their kind, platforms, children, subject and referrers, deletes of tags and manifests, audit
filters, registries' repository counts and tokens' last use."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from tests.registry_client import EMPTY_JSON, OCI_INDEX, OCI_MANIFEST, RegistryClient, digest_of
from tests.servers import ADMIN_PASSWORD, ADMIN_USER, Gateway

from .conftest import Api, messages, v2_client

SIGNATURE = "application/vnd.dev.cosign.artifact.sig.v1+json"


def _repository(registry: dict[str, Any], name: str) -> str:
    return f"{registry['href']}/repositories/{quote(name, safe='')}"


def _client(gateway: Gateway, registry: dict[str, Any]) -> RegistryClient:
    return v2_client(gateway, registry, (ADMIN_USER, ADMIN_PASSWORD))


def test_repositories_by_name_prefix_with_their_size(
    api: Api, registry: dict[str, Any], management_gateway: Gateway
) -> None:
    client = _client(management_gateway, registry)
    images = {name: client.push_image(name, "v1", seed=name) for name in ("team/a", "team/b", "teamx/c", "z")}
    listing = f"{registry['href']}/repositories"

    def names(**params: Any) -> tuple[list[str], int]:
        page = api.get(listing, params=params).json()
        return [item["id"] for item in page["items"]], page["total"]

    assert names(prefix="team/") == (["team/a", "team/b"], 2)
    assert names(prefix="team") == (["team/a", "team/b", "teamx/c"], 3)
    assert names(prefix="y") == ([], 0)
    assert names() == (["team/a", "team/b", "teamx/c", "z"], 4)
    # pages keep the prefix
    first = api.get(listing, params={"prefix": "team", "limit": 2}).json()
    assert "prefix=team" in first["next"]
    assert [item["id"] for item in api.get(first["next"]).json()["items"]] == ["teamx/c"]
    for bad in ("Team", "team/*", "x" * 256):
        response = api.get(listing, params={"prefix": bad})
        assert response.status_code == 400, bad
        assert "prefix" in messages(response)

    # a repository's size: its blobs and manifests; the registry counts blobs once
    image = images["team/a"]
    size = len(image.manifest) + len(image.config) + sum(len(layer) for layer in image.layers)
    assert api.get(_repository(registry, "team/a")).json()["properties"]["size"] == size
    assert api.get(registry["href"]).json()["properties"]["repositoryCount"] == 4
    listed = api.get("/api/registries", params={"limit": 100}).json()["items"]  # counted per page
    assert [item["properties"]["repositoryCount"] for item in listed if item["id"] == registry["id"]] == [4]


def _referrer(client: RegistryClient, repository: str, subject: bytes) -> bytes:
    """A signature-like artifact whose subject is `subject` (OCI 1.1 referrers)."""
    empty = client.push_blob(repository, b"{}")
    payload = b'{"critical": "signed"}'
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": SIGNATURE,
        "config": {"mediaType": EMPTY_JSON, "digest": empty, "size": 2},
        "layers": [
            {"mediaType": SIGNATURE, "digest": client.push_blob(repository, payload), "size": len(payload)}
        ],
        "subject": {"mediaType": OCI_MANIFEST, "digest": digest_of(subject), "size": len(subject)},
    }
    manifest = json.dumps(document).encode()
    client.push_manifest(repository, digest_of(manifest), manifest)
    return manifest


def test_artifacts_say_what_they_are(api: Api, registry: dict[str, Any], management_gateway: Gateway) -> None:
    client = _client(management_gateway, registry)
    amd64 = client.push_image("multi", None, seed="amd64")
    arm64 = client.push_image("multi", None, seed="arm64")
    attestation = client.push_image("multi", None, seed="attestation")
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {**_descriptor(amd64.manifest), "platform": {"os": "linux", "architecture": "amd64"}},
                {
                    **_descriptor(arm64.manifest),
                    "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
                },
                {
                    **_descriptor(attestation.manifest),
                    "platform": {"os": "unknown", "architecture": "unknown"},
                },
            ],
        }
    ).encode()
    client.push_manifest("multi", "latest", index, OCI_INDEX)
    signature = _referrer(client, "multi", amd64.manifest)
    base = f"{_repository(registry, 'multi')}/artifacts"

    shown = api.get(f"{base}/{digest_of(index)}").json()["properties"]
    assert shown["kind"] == "index"
    assert shown["platforms"] == ["linux/amd64", "linux/arm64/v8"]  # the attestation is none
    assert shown["children"] == [
        {"digest": amd64.digest, "platform": "linux/amd64"},
        {"digest": arm64.digest, "platform": "linux/arm64/v8"},
        {"digest": attestation.digest, "platform": None},
    ]
    assert shown["tags"] == ["latest"]

    image = api.get(f"{base}/{amd64.digest}").json()["properties"]
    assert image["kind"] == "image"
    assert image["tags"] == []
    assert image["referrers"] == [
        {"digest": digest_of(signature), "artifactType": SIGNATURE, "size": len(signature)}
    ]

    referrer = api.get(f"{base}/{digest_of(signature)}").json()
    assert referrer["properties"]["kind"] == "artifact"
    assert referrer["properties"]["subject"] == amd64.digest
    assert referrer["properties"]["artifactType"] == SIGNATURE
    assert referrer["metadata"]["pushedAt"] == referrer["metadata"]["createdAt"]  # untagged

    # the list says the same, page by page
    listed = {item["id"]: item for item in api.get(base, params={"limit": 100}).json()["items"]}
    assert listed[amd64.digest]["properties"] == image
    assert listed[digest_of(index)]["properties"] == shown


def _descriptor(manifest: bytes) -> dict[str, Any]:
    return {"mediaType": OCI_MANIFEST, "digest": digest_of(manifest), "size": len(manifest)}


def test_pushed_at_is_the_last_push_of_a_tag(
    api: Api, registry: dict[str, Any], management_gateway: Gateway
) -> None:
    client = _client(management_gateway, registry)
    image = client.push_image("app", "v1")
    location = f"{_repository(registry, 'app')}/artifacts/{image.digest}"
    first = api.get(location).json()["metadata"]
    time.sleep(0.01)  # timestamps are in ms: make sure the clock moves
    client.push_manifest("app", "stable", image.manifest)
    later = api.get(location).json()["metadata"]
    assert later["createdAt"] == first["createdAt"]
    assert later["pushedAt"] > first["pushedAt"]


def test_deleting_a_tag_and_a_manifest(
    api: Api, other_api: Api, registry: dict[str, Any], management_gateway: Gateway
) -> None:
    client = _client(management_gateway, registry)
    image = client.push_image("app", "v1")
    client.push_manifest("app", "v2", image.manifest)
    other = client.push_image("app", "other", seed="other")
    repository = _repository(registry, "app")
    assert client.request("GET", "/v2/app/manifests/v1").status_code == 200  # cached now

    # another account sees nothing to delete
    assert other_api.delete(f"{repository}/tags/v1").status_code == 404
    assert other_api.delete(f"{repository}/artifacts/{image.digest}").status_code == 404

    assert api.delete(f"{repository}/tags/v1").status_code == 204
    assert client.request("GET", "/v2/app/manifests/v1").status_code == 404
    assert client.request("GET", "/v2/app/manifests/v2").status_code == 200
    assert api.get(f"{repository}/artifacts/{image.digest}").json()["properties"]["tags"] == ["v2"]
    assert api.delete(f"{repository}/tags/v1").status_code == 404
    assert api.delete(f"{repository}/tags/.bad").status_code == 400

    assert api.delete(f"{repository}/artifacts/{image.digest}").status_code == 204
    assert client.request("GET", f"/v2/app/manifests/{image.digest}").status_code == 404
    assert client.request("GET", "/v2/app/manifests/v2").status_code == 404  # its tags went with it
    assert api.get(f"{repository}/artifacts/{image.digest}").status_code == 404
    assert api.delete(f"{repository}/artifacts/{image.digest}").status_code == 404
    assert api.delete(f"{repository}/artifacts/sha256:nothex").status_code == 400
    assert client.request("GET", f"/v2/app/manifests/{other.digest}").status_code == 200

    trail = api.get("/api/audit", params={"limit": 2}).json()["items"]
    assert [entry["properties"]["action"] for entry in trail] == ["artifact.delete", "tag.delete"]
    assert trail[1]["properties"]["detail"] == {
        "registry": registry["properties"]["name"],
        "repository": "app",
        "tag": "v1",
    }


def test_audit_filters(api: Api, other_api: Api, registry: dict[str, Any]) -> None:
    token = api.create_token(registry)
    # the server's clock: the token's creation, after the registry's by a password hash at least
    started = datetime.fromisoformat(token["metadata"]["createdAt"])
    assert api.patch(token["href"], {"status": "disabled"}).status_code == 200
    mine = other_api.create_registry()  # another account's action: never in this trail

    def actions(**params: Any) -> list[str]:
        page = api.get("/api/audit", params={"limit": 100, **params}).json()
        assert page["total"] == len(page["items"])
        return [entry["properties"]["action"] for entry in page["items"]]

    since = {"since": started.isoformat()}
    assert actions(**since, action="token.") == ["token.update", "token.create"]
    assert actions(**since, action="token.create") == ["token.create"]
    assert actions(**since, actor=ADMIN_USER, action="token.update") == ["token.update"]
    assert actions(**since, actor="someone-else") == []
    assert actions(until=started.isoformat(), action="token.update", actor="nobody") == []
    assert actions(**since) == ["token.update", "token.create"]  # not the other account's creation
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert actions(since=future) == []

    # pages keep the filters
    page = api.get("/api/audit", params={"limit": 1, "action": "token.", **since}).json()
    assert page["total"] == 2
    following = api.get(page["next"]).json()
    assert [entry["properties"]["action"] for entry in following["items"]] == ["token.create"]
    for bad in ({"since": "yesterday"}, {"until": "2030-01-01T00:00:00"}, {"action": "Token.Create"}):
        response = api.get("/api/audit", params=bad)
        assert response.status_code == 400, bad
    other_api.delete(mine["href"])


def test_a_tokens_last_use(api: Api, registry: dict[str, Any], management_gateway: Gateway) -> None:
    token = api.create_token(registry)
    assert token["metadata"]["lastUsedAt"] is None
    credentials = token["properties"]["credentials"]
    client = v2_client(management_gateway, registry, (credentials["username"], credentials["password"]))
    before = datetime.now(UTC) - timedelta(seconds=1)
    assert client.request("GET", "/v2/").status_code == 200
    used = api.get(token["href"]).json()["metadata"]["lastUsedAt"]
    assert used is not None
    assert datetime.fromisoformat(used) >= before
    listed = api.get(f"{registry['href']}/tokens").json()["items"]
    assert [item["metadata"]["lastUsedAt"] for item in listed if item["id"] == token["id"]] == [used]
