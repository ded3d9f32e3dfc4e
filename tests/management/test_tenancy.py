"""Tenants never see each other: another account's resources are 404, like missing ones."""

from __future__ import annotations

from typing import Any

from tests.servers import Gateway

from .conftest import OTHER_PASSWORD, OTHER_USER, Api, v2_client


def test_another_account_cannot_see_or_touch_a_registry(
    api: Api, other_api: Api, registry: dict[str, Any], management_gateway: Gateway
) -> None:
    token = api.create_token(registry)
    credentials = token["properties"]["credentials"]
    admin_client = v2_client(management_gateway, registry, (credentials["username"], credentials["password"]))
    admin_client.push_image("team/app", "v1")
    repository = f"{registry['href']}/repositories/team%2Fapp"

    listed = other_api.get("/api/registries", params={"limit": 100}).json()
    assert registry["id"] not in {item["id"] for item in listed["items"]}
    for response in (
        other_api.get(registry["href"]),
        other_api.patch(registry["href"], {"apiSubnetAllowList": ["192.0.2.0/24"]}),
        other_api.put(registry["href"], {"name": registry["properties"]["name"], "location": "local"}),
        other_api.delete(registry["href"]),
        other_api.get(f"{registry['href']}/tokens"),
        other_api.post(
            f"{registry['href']}/tokens",
            {"name": "sneaky", "scopes": [{"name": "*", "type": "repository", "actions": ["pull"]}]},
        ),
        other_api.get(token["href"]),
        other_api.patch(token["href"], {"status": "disabled"}),
        other_api.delete(token["href"]),
        other_api.get(f"{registry['href']}/repositories"),
        other_api.get(repository),
        other_api.delete(repository),
        other_api.get(f"{repository}/artifacts"),
    ):
        assert response.status_code == 404, (response.request.method, response.request.url, response.text)
        assert response.json()["messages"][0]["errorCode"] == "NOT_FOUND"

    # nothing changed
    after = api.get(registry["href"]).json()
    usage = {"storageUsage": None, "repositoryCount": None}  # the content pushed since it was made
    assert {**after["properties"], **usage} == {**registry["properties"], **usage}
    assert api.get(token["href"]).json()["properties"]["status"] == "enabled"
    assert api.get(repository).status_code == 200

    # nor can its users reach the registry's content
    intruder = v2_client(management_gateway, registry, (OTHER_USER, OTHER_PASSWORD))
    assert intruder.request("GET", "/v2/team/app/manifests/v1").status_code == 401


def test_a_token_is_found_only_under_its_own_registry(api: Api, registry: dict[str, Any]) -> None:
    token = api.create_token(registry)
    other = api.create_registry()
    try:
        assert api.get(f"{other['href']}/tokens/{token['id']}").status_code == 404
        assert api.delete(f"{other['href']}/tokens/{token['id']}").status_code == 404
        assert api.get(token["href"]).status_code == 200
    finally:
        api.delete(other["href"])


def test_each_account_lists_only_its_own_registries(api: Api, other_api: Api) -> None:
    theirs = other_api.create_registry()
    try:
        mine = {item["id"] for item in api.get("/api/registries", params={"limit": 100}).json()["items"]}
        assert theirs["id"] not in mine
        assert api.get(theirs["href"]).status_code == 404
        listed = other_api.get("/api/registries").json()
        assert [item["id"] for item in listed["items"]] == [theirs["id"]]
        assert listed["total"] == 1
    finally:
        assert other_api.delete(theirs["href"]).status_code == 204
