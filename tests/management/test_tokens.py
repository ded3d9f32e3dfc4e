"""`/api/registries/{id}/tokens`: CRUD, validation, and what a token's password can do on v2."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.servers import DOMAIN, Gateway

from .conftest import Api, messages, unique_name, v2_client

PULL_PUSH_TEAM = [{"name": "team/*", "type": "repository", "actions": ["pull", "push"]}]


def _in(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat().replace("+00:00", "Z")


def _credentials(token: dict[str, Any]) -> tuple[str, str]:
    credentials = token["properties"]["credentials"]
    return credentials["username"], credentials["password"]


def test_create_get_list_patch_replace_delete(api: Api, registry: dict[str, Any]) -> None:
    expiry = _in(timedelta(days=30))
    response = api.post(
        f"{registry['href']}/tokens",
        {"name": "ci-pipeline", "scopes": PULL_PUSH_TEAM, "expiryDate": expiry, "status": "enabled"},
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["Location"] == created["href"]
    assert created["href"] == f"{registry['href']}/tokens/{created['id']}"
    properties = created["properties"]
    password = properties["credentials"]["password"]
    assert password.startswith("ogt_")
    assert properties["credentials"]["username"] == "ci-pipeline"
    host = f"{registry['properties']['name']}.{DOMAIN}"
    assert properties["credentials"]["dockerLogin"] == f"docker login {host} -u ci-pipeline -p {password}"
    assert properties["scopes"] == PULL_PUSH_TEAM
    assert properties["status"] == "enabled"
    assert properties["oneTime"] is False
    shown = datetime.fromisoformat(properties["expiryDate"])
    assert abs(shown - datetime.fromisoformat(expiry)) < timedelta(milliseconds=1)  # kept in ms
    assert created["metadata"]["firstUsedAt"] is None

    # the password is shown once: never again
    fetched = api.get(created["href"]).json()
    assert "credentials" not in fetched["properties"]
    assert password not in api.get(f"{registry['href']}/tokens").text
    assert fetched["properties"] == {k: v for k, v in properties.items() if k != "credentials"}
    assert [t["id"] for t in api.get(f"{registry['href']}/tokens").json()["items"]] == [created["id"]]

    patched = api.patch(created["href"], {"status": "disabled"}).json()
    assert patched["properties"]["status"] == "disabled"
    assert patched["properties"]["scopes"] == PULL_PUSH_TEAM  # kept
    catalog = [{"name": "catalog", "type": "registry", "actions": ["pull"]}]
    patched = api.patch(created["href"], {"scopes": catalog, "expiryDate": None}).json()
    assert patched["properties"]["scopes"] == catalog
    assert patched["properties"]["expiryDate"] is None
    assert patched["properties"]["status"] == "disabled"

    replaced = api.put(created["href"], {"name": "ci-pipeline", "scopes": PULL_PUSH_TEAM})
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["properties"]["status"] == "enabled"  # PUT: defaults for what is not given

    assert api.delete(created["href"]).status_code == 204
    assert api.get(created["href"]).status_code == 404
    assert api.delete(created["href"]).status_code == 404


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"expiryDate": _in(timedelta(minutes=30))}, "at least one hour"),
        ({"expiryDate": _in(-timedelta(days=1))}, "at least one hour"),
        ({"expiryDate": "2099-01-01T00:00:00"}, "time zone"),
        ({"expiryDate": "next tuesday"}, "ISO 8601"),
        ({"expiryDate": "9999-12-31T23:59:59-23:59"}, "ISO 8601"),  # past year 9999 in UTC
        ({"expiryDate": 4102444800}, "must be a string"),
        ({"scopes": [{"name": "*", "type": "repository", "actions": ["admin"]}]}, "must be one of pull"),
        ({"scopes": [{"name": "*", "type": "namespace", "actions": ["pull"]}]}, "repository, registry"),
        ({"scopes": [{"name": "*", "type": "repository", "actions": []}]}, "at least 1"),
        ({"scopes": [{"name": "*", "type": "repository"}]}, "missing required field(s) actions"),
        ({"scopes": [{"name": "*", "type": "repository", "actions": ["pull"], "x": 1}]}, "unknown field"),
        ({"scopes": [{"name": "../x", "type": "repository", "actions": ["pull"]}]}, "invalid repository"),
        ({"scopes": [{"name": "Team/*", "type": "repository", "actions": ["pull"]}]}, "invalid repository"),
        ({"scopes": [{"name": "*", "type": "registry", "actions": ["pull"]}]}, "'catalog'"),
        ({"scopes": []}, "at least 1"),
        ({"scopes": "team/*:pull"}, "must be an array"),
        ({"name": "has space"}, "name"),
        ({"name": "x" * 65}, "name"),
        ({"status": "paused"}, "enabled, disabled"),
        ({"oneTime": "yes"}, "true or false"),
        ({"password": "mine"}, "unknown field(s) password"),
    ],
)
def test_invalid_tokens_are_400(
    api: Api, registry: dict[str, Any], body: dict[str, Any], expected: str
) -> None:
    response = api.post(
        f"{registry['href']}/tokens", {"name": unique_name("t"), "scopes": PULL_PUSH_TEAM, **body}
    )
    assert response.status_code == 400, response.text
    assert expected in messages(response)


def test_changes_are_validated_too(api: Api, registry: dict[str, Any]) -> None:
    token = api.create_token(registry, name="fixed")
    assert (
        api.post(f"{registry['href']}/tokens", {"name": "fixed", "scopes": PULL_PUSH_TEAM}).status_code == 409
    )
    for body, expected in (
        ({"name": "renamed"}, "cannot be changed"),
        ({"oneTime": True}, "cannot be changed"),
        ({"expiryDate": _in(timedelta(minutes=5))}, "at least one hour"),
        ({"scopes": [{"name": "*", "type": "repository", "actions": ["fly"]}]}, "must be one of"),
        ({"createdAt": "now"}, "unknown field"),
    ):
        response = api.patch(token["href"], body)
        assert response.status_code == 400, (body, response.text)
        assert expected in messages(response)
    assert (
        api.patch(token["href"], {"name": "fixed", "oneTime": False}).status_code == 200
    )  # repeating is fine
    assert api.put(token["href"], {"name": "fixed"}).status_code == 400  # scopes required
    ok = api.patch(token["href"], {"expiryDate": _in(timedelta(hours=2))})
    assert ok.status_code == 200, ok.text


def test_offset_pagination(api: Api, registry: dict[str, Any]) -> None:
    names = sorted(api.create_token(registry)["properties"]["name"] for _ in range(3))
    first = api.get(f"{registry['href']}/tokens", params={"limit": 2}).json()
    assert first["total"] == 3
    assert [t["properties"]["name"] for t in first["items"]] == names[:2]
    second = api.get(first["next"]).json()
    assert [t["properties"]["name"] for t in second["items"]] == names[2:]
    assert second["next"] is None


def test_a_token_works_on_v2_within_its_scopes(
    api: Api, registry: dict[str, Any], management_gateway: Gateway
) -> None:
    credentials = _credentials(api.create_token(registry, scopes=PULL_PUSH_TEAM))
    pusher = v2_client(management_gateway, registry, credentials)
    image = pusher.push_image("team/app", "v1")
    assert pusher.request("GET", "/v2/team/app/manifests/v1").status_code == 200
    denied = pusher.request("PUT", "/v2/other/app/manifests/v1", data=image.manifest)
    assert denied.status_code == 403  # Basic credentials outside the token's scopes
    assert pusher.request("GET", "/v2/_catalog").status_code == 403

    pull_only = [{"name": "*", "type": "repository", "actions": ["pull"]}]
    puller = v2_client(
        management_gateway, registry, _credentials(api.create_token(registry, scopes=pull_only))
    )
    assert puller.request("GET", f"/v2/team/app/manifests/{image.digest}").status_code == 200
    assert puller.request("DELETE", f"/v2/team/app/manifests/{image.digest}").status_code == 403
    assert puller.request("PUT", "/v2/team/app/manifests/v2", data=image.manifest).status_code == 403

    catalog = [{"name": "catalog", "type": "registry", "actions": ["pull"]}]
    lister = v2_client(management_gateway, registry, _credentials(api.create_token(registry, scopes=catalog)))
    assert lister.request("GET", "/v2/_catalog").json()["repositories"] == []  # may pull nothing
    catalog_and_pull = [*catalog, {"name": "team/*", "type": "repository", "actions": ["pull"]}]
    lister = v2_client(
        management_gateway, registry, _credentials(api.create_token(registry, scopes=catalog_and_pull))
    )
    assert lister.request("GET", "/v2/_catalog").json()["repositories"] == ["team/app"]

    # a token of this registry is nothing on another registry of the same account
    elsewhere = api.create_registry()
    try:
        stranger = v2_client(management_gateway, elsewhere, credentials)
        assert stranger.request("GET", "/v2/").status_code == 401
    finally:
        api.delete(elsewhere["href"])


def _eventually(probe: Callable[[], int], status: int, timeout: float) -> None:
    """Until `probe()` answers `status` (a deadline for a busy machine; the change made through
    the API takes effect at once in this process)."""
    started = time.monotonic()
    while (code := probe()) != status:
        assert time.monotonic() - started < timeout, f"still {code} after {timeout} s"
        time.sleep(0.1)


def test_disabling_or_deleting_a_token_stops_it_within_seconds(
    api: Api, registry: dict[str, Any], management_gateway: Gateway
) -> None:
    token = api.create_token(registry, scopes=PULL_PUSH_TEAM)
    client = v2_client(management_gateway, registry, _credentials(token))
    client.push_image("team/app", "v1")
    host = f"{registry['properties']['name']}.{DOMAIN}"
    jwt = client.request("GET", "/token", params={"service": host, "scope": "repository:team/app:pull"})
    bearer = {"Authorization": f"Bearer {jwt.json()['token']}"}

    def basic() -> int:
        return client.request("GET", "/v2/team/app/manifests/v1").status_code

    def with_jwt() -> int:
        return client.request("GET", "/v2/team/app/manifests/v1", auth=None, headers=bearer).status_code

    assert basic() == 200
    assert with_jwt() == 200
    assert api.patch(token["href"], {"status": "disabled"}).status_code == 200
    _eventually(basic, 401, 10.0)
    _eventually(with_jwt, 401, 10.0)  # JWTs minted before die with their token
    assert api.patch(token["href"], {"status": "enabled"}).status_code == 200
    _eventually(basic, 200, 10.0)
    assert api.delete(token["href"]).status_code == 204
    _eventually(basic, 401, 10.0)


def test_registry_tokens_cannot_use_the_management_api(
    api: Api, registry: dict[str, Any], management_gateway: Gateway
) -> None:
    robot = Api(management_gateway, _credentials(api.create_token(registry)))
    for response in (
        robot.get("/api/registries"),
        robot.get(registry["href"]),
        robot.delete(registry["href"]),
    ):
        assert response.status_code == 403
        assert response.json()["messages"][0]["errorCode"] == "FORBIDDEN"
    assert api.get(registry["href"]).status_code == 200  # still there


def test_account_credentials_are_required(api: Api, management_gateway: Gateway) -> None:
    anonymous = Api(management_gateway, None)
    response = anonymous.get("/api/registries")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic ")
    assert response.json() == {
        "httpStatus": 401,
        "messages": [{"errorCode": "UNAUTHORIZED", "message": messages(response)}],
    }
    assert Api(management_gateway, ("admin", "wrong-password")).get("/api/registries").status_code == 401
    assert Api(management_gateway, ("nobody", "whatever-password")).get("/api/registries").status_code == 401
    bearer = anonymous.get("/api/registries", headers={"Authorization": "Bearer abc.def.ghi"})
    assert bearer.status_code == 401
    assert anonymous.get("/api/openapi.json").status_code == 200  # the document is public
