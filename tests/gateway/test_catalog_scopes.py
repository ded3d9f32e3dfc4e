"""`/v2/_catalog` shows a registry token only the repositories its scopes let it pull, page by
page (`n`, `last`, `Link`) without losing or repeating any; account users see them all."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.registry_client import RegistryClient
from tests.servers import DOMAIN, Gateway, ocigate

REGISTRY = "catalogs"
HOST = f"{REGISTRY}.{DOMAIN}"
REPOSITORIES = (
    "apps/x",
    "apps/y",
    "apps/z/deep",
    "appsx/near-miss",
    "other/secret",
    "team/app",
    "team/other",
)


@pytest.fixture(scope="module")
def catalog_gateway(gateway: Gateway) -> Gateway:
    """The session gateway with a registry of its own, holding REPOSITORIES."""
    ocigate("registry", "create", REGISTRY, data_dir=gateway.data_dir)
    admin = RegistryClient(gateway.url, host=f"{HOST}:{gateway.port}")
    deadline = time.monotonic() + 10  # a new registry is served within a second or so
    while admin.request("GET", "/v2/").status_code != 200:
        assert time.monotonic() < deadline, f"registry {REGISTRY} not served"
        time.sleep(0.1)
    for repository in REPOSITORIES:
        admin.push_image(repository, "v1", seed=repository)
    return gateway


def token(gateway: Gateway, name: str, *scopes: str) -> tuple[str, str]:
    args = ["token", "create", name, "--registry", REGISTRY, *(f"--scope={s}" for s in scopes)]
    output = ocigate(*args, data_dir=gateway.data_dir)
    match = re.search(r"password \(shown once\): (\S+)", output)
    assert match is not None, output
    return name, match.group(1)


def walk(client: RegistryClient, n: int | None) -> list[str]:
    """Every page of the catalog, following `Link` until there is none."""
    seen: list[str] = []
    url = "/v2/_catalog" + (f"?n={n}" if n else "")
    while url:
        response = client.request("GET", url)
        assert response.status_code == 200, response.text
        page = response.json()["repositories"]
        if n:
            assert len(page) <= n
        seen += page
        link = response.headers.get("Link")
        if link is None:
            break
        target = re.fullmatch(r'<([^>]+)>; rel="next"', link)
        assert target is not None, link
        url = target.group(1)
        assert urlsplit(url).path == "/v2/_catalog"
        assert parse_qs(urlsplit(url).query)["last"] == [page[-1]]
    return seen


@pytest.mark.parametrize("n", [None, 1, 2, 100])
def test_a_token_lists_only_what_it_may_pull(catalog_gateway: Gateway, n: int | None) -> None:
    credentials = token(
        catalog_gateway, f"apps-reader-{n}", "apps/*:pull", "team/app:pull", "registry:catalog"
    )
    reader = RegistryClient(catalog_gateway.url, host=f"{HOST}:{catalog_gateway.port}", auth=credentials)
    assert walk(reader, n) == ["apps/x", "apps/y", "apps/z/deep", "team/app"]


def test_a_bearer_token_for_the_catalog_lists_the_same(catalog_gateway: Gateway) -> None:
    credentials = token(catalog_gateway, "bearer-reader", "team/*:pull", "other/*:push", "registry:catalog")
    response = requests.get(
        f"{catalog_gateway.url}/token",
        params={"service": HOST, "scope": "registry:catalog:*"},
        headers={"Host": f"{HOST}:{catalog_gateway.port}"},
        auth=credentials,
        timeout=30,
    )
    assert response.status_code == 200
    reader = RegistryClient(catalog_gateway.url, host=f"{HOST}:{catalog_gateway.port}", auth=None)
    reader.session.headers["Authorization"] = f"Bearer {response.json()['token']}"
    assert walk(reader, 1) == ["team/app", "team/other"]  # push without pull shows nothing


def test_a_token_pulling_everything_and_account_users_list_everything(catalog_gateway: Gateway) -> None:
    credentials = token(catalog_gateway, "all-reader", "*:pull", "registry:catalog")
    everything = sorted(REPOSITORIES)
    for auth in (credentials, None):
        client = RegistryClient(catalog_gateway.url, host=f"{HOST}:{catalog_gateway.port}")
        if auth is not None:
            client.session.auth = auth
        assert walk(client, 3) == everything
