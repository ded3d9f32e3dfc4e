"""A gateway of its own for the management API tests (they create accounts, registries and
tokens, and count them), with the account user `admin` and a second account's user."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.registry_client import RegistryClient
from tests.servers import ADMIN_PASSWORD, ADMIN_USER, DOMAIN, Gateway, ocigate
from tests.storage.metadata_stores import metadata as metadata  # the stores on both engines

OTHER_USER = "mallory"
OTHER_PASSWORD = "mallory-password-123"
_names = itertools.count()


class Api:
    """Requests to `/api/…` as one account user (`auth=None`: no credentials)."""

    def __init__(self, gateway: Gateway, auth: tuple[str, str] | None) -> None:
        self.gateway = gateway
        self.session = requests.Session()
        self.session.auth = auth

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        kwargs.setdefault("allow_redirects", False)
        url = path if path.startswith("http") else self.gateway.url + path
        return self.session.request(method, url, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, json=body, **kwargs)

    def patch(self, path: str, body: Any, **kwargs: Any) -> requests.Response:
        return self.request("PATCH", path, json=body, **kwargs)

    def put(self, path: str, body: Any, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, json=body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def create_registry(self, name: str | None = None, **properties: Any) -> dict[str, Any]:
        body = {"name": name or unique_name(), "location": "local", **properties}
        response = self.post("/api/registries", body)
        assert response.status_code == 201, response.text
        return response.json()

    def create_token(self, registry: dict[str, Any], **properties: Any) -> dict[str, Any]:
        body = {
            "name": unique_name("token"),
            "scopes": [{"name": "*", "type": "repository", "actions": ["pull", "push"]}],
            **properties,
        }
        response = self.post(f"{registry['href']}/tokens", body)
        assert response.status_code == 201, response.text
        return response.json()


def unique_name(prefix: str = "reg") -> str:
    """Registry names are global: unique per test run and process."""
    return f"{prefix}-{os.getpid()}-{next(_names)}"


def messages(response: requests.Response) -> str:
    """The error messages of a management error body, joined (for `in` checks)."""
    body = response.json()
    assert body["httpStatus"] == response.status_code
    return " | ".join(m["message"] for m in body["messages"])


def v2_client(gateway: Gateway, registry: dict[str, Any], auth: tuple[str, str] | None) -> RegistryClient:
    host = f"{registry['properties']['name']}.{DOMAIN}:{gateway.port}"
    return RegistryClient(gateway.url, host=host, auth=auth)


@pytest.fixture(scope="session")
def management_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    data_dir = tmp_path_factory.mktemp("management") / "data"
    server = Gateway(data_dir).start()
    # a second tenant: its user must never see or touch the first account's registries
    ocigate(
        "user", "create", OTHER_USER, "--account", "other", "--password", OTHER_PASSWORD, data_dir=data_dir
    )
    yield server
    server.stop()


@pytest.fixture
def api(management_gateway: Gateway) -> Api:
    return Api(management_gateway, (ADMIN_USER, ADMIN_PASSWORD))


@pytest.fixture
def other_api(management_gateway: Gateway) -> Api:
    return Api(management_gateway, (OTHER_USER, OTHER_PASSWORD))


@pytest.fixture
def registry(api: Api) -> Iterator[dict[str, Any]]:
    """A fresh registry of the admin's account, deleted afterwards."""
    created = api.create_registry()
    yield created
    api.delete(created["href"])
