"""Determining support (spec.md "Determining Support", end-1)."""

from __future__ import annotations

from tests.registry_client import RegistryClient

from .oci import describe


def test_api_version_check_is_200(client: RegistryClient) -> None:
    # "If the response is `200 OK`, then the registry implements this specification."
    response = client.request("GET", "/v2/")
    assert response.status_code == 200, describe(response)


def test_api_version_check_announces_registry_2_0(client: RegistryClient) -> None:
    response = client.request("GET", "/v2/")
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_api_version_check_answers_head(client: RegistryClient) -> None:
    response = client.request("HEAD", "/v2/")
    assert response.status_code == 200, describe(response)
    assert response.content == b""


def test_api_version_check_without_trailing_slash(client: RegistryClient) -> None:
    # Clients normalise to `/v2/`; `/v2` may answer directly or redirect there.
    response = client.request("GET", "/v2")
    assert response.status_code in (200, 301, 308), describe(response)
    if response.status_code != 200:
        assert response.headers["Location"].endswith("/v2/")
