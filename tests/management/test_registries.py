"""`/api/registries`, `/api/names`, `/api/locations`: CRUD, validation, pagination, and what the
v2 routes see of it (new and deleted hosts, subnet allow lists)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.servers import ADMIN_PASSWORD, ADMIN_USER, DOMAIN, Gateway

from .conftest import Api, messages, unique_name, v2_client

ADMIN = (ADMIN_USER, ADMIN_PASSWORD)


def test_create_get_list_patch_replace_delete(api: Api) -> None:
    name = unique_name()
    schedule = {"days": ["sun", "wed"], "time": "03:30"}
    response = api.post(
        "/api/registries",
        {
            "name": name,
            "location": "local",
            "garbageCollectionSchedule": schedule,
            "apiSubnetAllowList": ["10.0.0.0/8", "2001:db8::/32"],
            "features": {"vulnerabilityScanning": True},
        },
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == {"id", "type", "href", "metadata", "properties"}
    assert created["type"] == "registry"
    assert created["href"] == f"/api/registries/{created['id']}" == response.headers["Location"]
    assert created["metadata"]["createdAt"].endswith("Z")
    assert created["properties"] == {
        "name": name,
        "location": "local",
        "garbageCollectionSchedule": {"days": ["wed", "sun"], "time": "03:30"},  # in week order
        "deleteUntaggedManifests": False,
        "storageQuotaBytes": None,
        "apiSubnetAllowList": ["10.0.0.0/8", "2001:db8::/32"],
        "features": {"vulnerabilityScanning": True},
        "hostname": f"{name}.{DOMAIN}",
        "storageUsage": {"bytes": 0},
        "repositoryCount": 0,
        "lastGarbageCollection": None,
    }
    assert api.get(created["href"]).json() == created
    listed = api.get("/api/registries", params={"limit": 100}).json()
    assert created in listed["items"]

    patched = api.patch(created["href"], {"apiSubnetAllowList": []})
    assert patched.status_code == 200, patched.text
    properties = patched.json()["properties"]
    assert properties["apiSubnetAllowList"] == []
    assert properties["garbageCollectionSchedule"] == {"days": ["wed", "sun"], "time": "03:30"}  # kept
    assert properties["features"] == {"vulnerabilityScanning": True}
    untagged = api.patch(created["href"], {"deleteUntaggedManifests": True})
    assert untagged.json()["properties"]["deleteUntaggedManifests"] is True
    assert api.patch(created["href"], {"deleteUntaggedManifests": "yes"}).status_code == 400
    assert api.patch(created["href"], {"storageQuotaBytes": 0}).status_code == 400
    quota = api.patch(created["href"], {"storageQuotaBytes": 10**9}).json()["properties"]
    assert quota["storageQuotaBytes"] == 10**9

    replaced = api.put(created["href"], {"name": name, "location": "local"})
    assert replaced.status_code == 200, replaced.text
    properties = replaced.json()["properties"]
    assert properties["garbageCollectionSchedule"] is None  # PUT: back to the defaults
    assert properties["features"] == {"vulnerabilityScanning": False}
    assert properties["deleteUntaggedManifests"] is False

    assert api.patch(created["href"], {"garbageCollectionSchedule": schedule}).status_code == 200
    cleared = api.patch(created["href"], {"garbageCollectionSchedule": None})
    assert cleared.json()["properties"]["garbageCollectionSchedule"] is None

    assert api.delete(created["href"]).status_code == 204
    assert api.get(created["href"]).status_code == 404
    assert api.delete(created["href"]).status_code == 404
    assert api.patch(created["href"], {}).status_code == 404


@pytest.mark.parametrize(
    "name", ["ab", "1abc", "abc-", "Abc", "a" * 64, "a_b", "a.b", "", "ab\u00e9"], ids=repr
)
def test_invalid_registry_names_are_400(api: Api, name: str) -> None:
    response = api.post("/api/registries", {"name": name, "location": "local"})
    assert response.status_code == 400, response.text
    assert "name" in messages(response)
    if name:  # an empty segment is no path to /api/names/{name}
        assert api.request("HEAD", f"/api/names/{name}").status_code == 400


def test_name_check(api: Api, registry: dict[str, Any]) -> None:
    assert api.request("HEAD", f"/api/names/{registry['properties']['name']}").status_code == 200
    assert api.request("HEAD", f"/api/names/{unique_name()}").status_code == 404
    assert api.request("HEAD", "/api/names/-bad").status_code == 400
    assert api.request("GET", f"/api/names/{unique_name()}").status_code == 405


def test_names_are_global(api: Api, other_api: Api, registry: dict[str, Any]) -> None:
    taken = {"name": registry["properties"]["name"], "location": "local"}
    assert api.post("/api/registries", taken).status_code == 409
    response = other_api.post("/api/registries", taken)
    assert response.status_code == 409
    assert "taken" in messages(response)


def _allow_list(count: int) -> list[str]:
    return [f"10.{i}.0.0/16" for i in range(count)]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"apiSubnetAllowList": _allow_list(26)}, "at most 25"),
        ({"apiSubnetAllowList": ["10.0.0.300/8"]}, "not a CIDR"),
        ({"apiSubnetAllowList": ["10.0.0.1/8"]}, "host bits"),
        ({"apiSubnetAllowList": ["10.0.0.0/8", "10.0.0.0/8"]}, "twice"),
        ({"apiSubnetAllowList": "10.0.0.0/8"}, "must be an array"),
        ({"apiSubnetAllowList": [10]}, "must be a string"),
        ({"location": "mars"}, "must be one of local"),
        ({"garbageCollectionSchedule": {"days": ["someday"], "time": "03:00"}}, "must be one of mon"),
        ({"garbageCollectionSchedule": {"days": [], "time": "03:00"}}, "at least 1"),
        ({"garbageCollectionSchedule": {"days": ["mon", "mon"], "time": "03:00"}}, "twice"),
        ({"garbageCollectionSchedule": {"days": ["mon"], "time": "24:00"}}, "HH:MM"),
        ({"garbageCollectionSchedule": {"days": ["mon"]}}, "missing required field(s) time"),
        ({"features": {"teleport": True}}, "unknown field(s) teleport"),
        ({"features": {"vulnerabilityScanning": "yes"}}, "true or false"),
        ({"colour": "blue"}, "unknown field(s) colour"),
        ({"hostname": "x.example"}, "unknown field(s) hostname"),
    ],
)
def test_invalid_properties_are_400(api: Api, body: dict[str, Any], expected: str) -> None:
    response = api.post("/api/registries", {"name": unique_name(), "location": "local", **body})
    assert response.status_code == 400, response.text
    assert response.json()["messages"][0]["errorCode"] == "VALIDATION_ERROR"
    assert expected in messages(response)


def test_every_problem_is_listed_with_the_field_it_is_in(api: Api) -> None:
    body = {
        "name": unique_name(),
        "location": "mars",
        "apiSubnetAllowList": ["10.0.0.0/8", "10.0.0.1/8"],
        "garbageCollectionSchedule": {"days": ["mon", "someday"], "time": "03:00"},
    }
    response = api.post("/api/registries", body)
    assert response.status_code == 400, response.text
    found = response.json()["messages"]
    assert {m["errorCode"] for m in found} == {"VALIDATION_ERROR"}
    assert [m["message"].split(":")[0] for m in found] == [
        "location",
        "garbageCollectionSchedule.days[1]",
        "apiSubnetAllowList[1]",
    ]


def test_allow_list_of_exactly_25_is_accepted(api: Api) -> None:
    created = api.create_registry(apiSubnetAllowList=_allow_list(25))
    assert len(created["properties"]["apiSubnetAllowList"]) == 25
    assert api.delete(created["href"]).status_code == 204


def test_malformed_requests_are_400_or_415(api: Api, registry: dict[str, Any]) -> None:
    response = api.request(
        "POST", "/api/registries", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert "not valid JSON" in messages(response)
    assert api.post("/api/registries", ["a", "list"]).status_code == 400
    response = api.request("POST", "/api/registries", data=b"name=x", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    assert api.post("/api/registries", {"location": "local"}).status_code == 400  # name missing
    response = api.patch(registry["href"], {"name": unique_name()})
    assert response.status_code == 400
    assert "cannot be changed" in messages(response)
    assert (
        api.put(registry["href"], {"name": registry["properties"]["name"]}).status_code == 400
    )  # no location
    response = api.request(
        "POST",
        "/api/registries",
        data=b"{" + b" " * 70_000 + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413


def test_unknown_paths_methods_and_query_parameters(api: Api) -> None:
    response = api.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.json()["messages"][0]["errorCode"] == "NOT_FOUND"
    response = api.delete("/api/registries")
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, POST"
    assert api.get("/api/registries", params={"sort": "name"}).status_code == 400
    assert api.get("/api/registries/0123456789abcdef0123456789abcdef").status_code == 404
    assert api.get("/api/registries/not-an-id").status_code == 404


def test_offset_pagination(api: Api) -> None:
    created = [api.create_registry() for _ in range(3)]
    try:
        total = api.get("/api/registries").json()["total"]
        assert total >= 3
        seen: list[str] = []
        path: str | None = "/api/registries?limit=2"
        while path is not None:
            page = api.get(path).json()
            assert page["limit"] == 2
            assert page["total"] == total
            assert len(page["items"]) <= 2
            seen += [item["properties"]["name"] for item in page["items"]]
            path = page["next"]
        assert len(seen) == total
        assert seen == sorted(seen)
        assert {r["properties"]["name"] for r in created} <= set(seen)
        last = api.get("/api/registries", params={"limit": 2, "offset": total - 1}).json()
        assert len(last["items"]) == 1
        assert last["next"] is None
        assert last["offset"] == total - 1
        for bad in ({"limit": 0}, {"limit": 101}, {"limit": "ten"}, {"offset": -1}, {"offset": 2**40}):
            assert api.get("/api/registries", params=bad).status_code == 400, bad
    finally:
        for registry in created:
            api.delete(registry["href"])


def test_locations(api: Api) -> None:
    page = api.get("/api/locations").json()
    assert [item["id"] for item in page["items"]] == ["local"]
    assert page["total"] == 1
    assert page["next"] is None
    assert api.get("/api/locations/local").json()["properties"]["name"] == "local"
    assert api.get("/api/locations/mars").status_code == 404


def test_default_registry_cannot_be_deleted(api: Api) -> None:
    items = api.get("/api/registries", params={"limit": 100}).json()["items"]
    default = next(item for item in items if item["properties"]["name"] == "default")
    response = api.delete(default["href"])
    assert response.status_code == 409
    assert response.json()["messages"][0]["errorCode"] == "CONFLICT"


def test_a_new_registry_is_served_and_a_deleted_one_stops_within_seconds(
    api: Api, management_gateway: Gateway
) -> None:
    """The gateways cache "no such registry" for a second; the deadlines leave room for a busy
    machine (a test asserts no durations)."""
    created = api.create_registry()
    client = v2_client(management_gateway, created, ADMIN)
    _wait_for_status(lambda: client.request("GET", "/v2/").status_code, 200)
    image = client.push_image("team/app", "v1")
    upload = client.start_upload("team/app")  # a push in progress: what it staged goes too
    response = client.request(
        "PATCH", upload, data=b"partial", headers={"Content-Type": "application/octet-stream"}
    )
    assert response.status_code == 202
    staged = management_gateway.data_dir / "uploads" / response.headers["Docker-Upload-UUID"]
    assert staged.exists()
    assert api.delete(created["href"]).status_code == 204
    assert not staged.exists()
    _wait_for_status(lambda: client.request("GET", f"/v2/team/app/manifests/{image.digest}").status_code, 404)
    response = client.request("GET", "/v2/")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "NAME_UNKNOWN"


def _wait_for_status(probe: Any, status: int, timeout: float = 10.0) -> None:
    """Until `probe()` answers `status`, or fail at the deadline."""
    started = time.monotonic()
    while True:
        if probe() == status:
            return
        if time.monotonic() - started > timeout:
            raise AssertionError(f"status {status} not reached in {timeout} s")
        time.sleep(0.05)


def test_subnet_allow_list_is_enforced_on_v2_and_token(api: Api, management_gateway: Gateway) -> None:
    created = api.create_registry(apiSubnetAllowList=["10.0.0.0/8", "192.0.2.0/24"])
    client = v2_client(management_gateway, created, ADMIN)
    try:
        for path in ("/v2/", "/token?service=x&scope=repository:team/app:pull"):
            response = client.request("GET", path)
            assert response.status_code == 403, (path, response.text)
            assert response.json()["errors"][0]["code"] == "DENIED"
        # the management API itself is not behind the registry's list
        assert api.patch(created["href"], {"apiSubnetAllowList": ["127.0.0.0/8"]}).status_code == 200
        _wait_for_status(lambda: client.request("GET", "/v2/").status_code, 200)
        assert client.request("GET", "/token").status_code == 200
    finally:
        api.delete(created["href"])
