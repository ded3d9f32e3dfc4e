"""Several registries in one server, routed by Host, isolated from each other."""

from __future__ import annotations

import time

import pytest

from tests.registry_client import RegistryClient, digest_of
from tests.servers import DOMAIN, Gateway, ocigate


def test_registry_created_while_serving_is_served_within_a_second(gateway: Gateway) -> None:
    name = f"late-{int(time.time() * 1000) % 10**9}"
    late = RegistryClient(gateway.url, host=f"{name}.{DOMAIN}:{gateway.port}")
    missing = late.request("GET", "/v2/")
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["code"] == "NAME_UNKNOWN"
    ocigate("registry", "create", name, data_dir=gateway.data_dir)
    deadline = time.monotonic() + 1.5  # 1 s cache lifetime plus the CLI's own latency
    while late.request("GET", "/v2/").status_code != 200:
        assert time.monotonic() < deadline, "new registry not served within a second"
        time.sleep(0.05)
    image = late.push_image("app", "v1")
    assert late.request("GET", "/v2/app/manifests/v1").content == image.manifest


def test_registries_are_isolated(alpha: RegistryClient, beta: RegistryClient, client: RegistryClient) -> None:
    image = alpha.push_image("shared/name", "v1", seed="isolation")
    layer_digest = alpha.push_blob("shared/name", image.layers[0])
    for other in (beta, client):
        assert other.request("HEAD", f"/v2/shared/name/blobs/{layer_digest}").status_code == 404
        assert other.request("GET", "/v2/shared/name/manifests/v1").status_code == 404
        assert other.request("GET", f"/v2/shared/name/manifests/{image.digest}").status_code == 404
        assert other.request("GET", "/v2/shared/name/tags/list").status_code == 404
        assert "shared/name" not in other.request("GET", "/v2/_catalog").json()["repositories"]
        # mounting from the same-named repository of another registry is an ordinary upload
        mount = other.request(
            "POST", "/v2/mine/blobs/uploads/", params={"mount": layer_digest, "from": "shared/name"}
        )
        assert mount.status_code == 202
        # an upload session of one registry cannot be continued through another
        upload = alpha.start_upload("shared/name")
        assert other.request("GET", upload).status_code == 404
        assert other.request("PATCH", upload, data=b"x").status_code == 404
    assert "shared/name" in alpha.request("GET", "/v2/_catalog").json()["repositories"]


def test_same_content_in_two_registries_is_served_by_each(
    alpha: RegistryClient, beta: RegistryClient
) -> None:
    content = b"identical bytes pushed to two tenants"
    digest = alpha.push_blob("one", content)
    assert beta.request("HEAD", f"/v2/two/blobs/{digest}").status_code == 404  # no existence oracle
    beta.push_blob("two", content)
    assert beta.request("GET", f"/v2/two/blobs/{digest}").content == content
    assert alpha.request("DELETE", f"/v2/one/blobs/{digest}").status_code == 202
    assert beta.request("GET", f"/v2/two/blobs/{digest}").content == content


@pytest.mark.parametrize("bad", ["ab", "Upper", "1lead", "trail-", "has_underscore", "x" * 64])
def test_cli_rejects_bad_registry_names(gateway: Gateway, bad: str) -> None:
    with pytest.raises(RuntimeError, match="invalid registry name"):
        ocigate("registry", "create", bad, data_dir=gateway.data_dir)


def test_emptied_repository_leaves_the_catalog(client: RegistryClient) -> None:
    image = client.push_image("emptied/app", "v1", seed="emptied")
    assert "emptied/app" in client.request("GET", "/v2/_catalog").json()["repositories"]
    assert client.request("DELETE", f"/v2/emptied/app/manifests/{image.digest}").status_code == 202
    for blob in (image.config, *image.layers):
        assert client.request("DELETE", f"/v2/emptied/app/blobs/{digest_of(blob)}").status_code == 202
    assert "emptied/app" not in client.request("GET", "/v2/_catalog").json()["repositories"]
