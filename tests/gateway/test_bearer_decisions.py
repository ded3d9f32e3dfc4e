"""Bearer decisions remembered for the hot path (gateway/authz.py `BearerDecisions`) grant no more
than a fresh check would: not past the token's expiry, not to another repository, endpoint or
method, not to another registry. (Revocations by another process: test_auth.py and
test_user_revocation.py, whose first requests are remembered too.)

Each test first makes the same request repeatedly, so that it is answered from the remembered
decision, then changes one thing and expects the refusal a fresh check gives."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from ocigate.auth.jwts import LEEWAY_SECONDS
from tests.gateway.test_auth import ALPHA, BETA, bearer, create_token, fetch_token
from tests.registry_client import RegistryClient
from tests.servers import ADMIN_PASSWORD, ADMIN_USER, Gateway, ocigate

TTL = 3  # seconds: the JWTs of the short-lived gateway below


@pytest.fixture(scope="module")
def short_lived(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway minting JWTs that expire after TTL seconds."""
    data_dir = tmp_path_factory.mktemp("short-jwts") / "data"
    ocigate("registry", "create", "alpha", data_dir=data_dir)
    server = Gateway(data_dir, env={"OCIGATE_TOKEN_TTL": str(TTL)}).start()
    yield server
    server.stop()


def _pushed(gateway: Gateway, host: str, repository: str) -> str:
    """A small image tagged v1 in `repository`, pushed by the admin."""
    admin = RegistryClient(gateway.url, host=f"{host}:{gateway.port}", auth=(ADMIN_USER, ADMIN_PASSWORD))
    admin.push_image(repository, "v1")
    return f"/v2/{repository}/manifests/v1"


def _challenge_error(response: requests.Response) -> str:
    return response.headers.get("WWW-Authenticate", "")


def test_a_remembered_decision_ends_when_the_jwt_expires(short_lived: Gateway) -> None:
    path = _pushed(short_lived, ALPHA, "expiring/app")
    robot = ("robot", create_token(short_lived, "robot", "*:pull"))
    clients, minted = {}, time.time()  # an account user's JWT and a robot token's
    for credentials in [(ADMIN_USER, ADMIN_PASSWORD), robot]:
        token = fetch_token(short_lived, ALPHA, credentials, "repository:expiring/app:pull").json()["token"]
        clients[credentials[0]] = client = bearer(short_lived, ALPHA, token)
        assert {client.request("GET", path).status_code for _ in range(20)} == {200}, credentials
    # exp is in whole seconds, and verification allows for clock skew
    time.sleep(max(0.0, minted + TTL + LEEWAY_SECONDS + 1.5 - time.time()))
    for name, client in clients.items():
        refused = client.request("GET", path)
        assert refused.status_code == 401, name
        assert 'error="invalid_token"' in _challenge_error(refused), name


def test_a_remembered_decision_is_for_its_repository_endpoint_and_method(gateway: Gateway) -> None:
    path = _pushed(gateway, ALPHA, "decided/app")
    _pushed(gateway, ALPHA, "decided/other")
    password = create_token(gateway, "decided-puller", "decided/app:pull")
    token = fetch_token(gateway, ALPHA, ("decided-puller", password), "repository:decided/app:pull").json()[
        "token"
    ]
    client = bearer(gateway, ALPHA, token)
    for method in ("GET", "HEAD"):
        assert {client.request(method, path).status_code for _ in range(10)} == {200}
    for method, other in [
        ("GET", "/v2/decided/other/manifests/v1"),  # another repository
        ("HEAD", "/v2/decided/other/manifests/v1"),
        ("DELETE", path),  # another method on the same path
        ("PUT", path),
        ("POST", "/v2/decided/app/blobs/uploads/"),  # another endpoint of the repository
    ]:
        refused = client.request(method, other, data=b"{}")
        assert refused.status_code == 401, (method, other, refused.status_code)
        assert 'error="insufficient_scope"' in _challenge_error(refused), (method, other)
    assert client.request("GET", path).status_code == 200  # the remembered one still holds
    # the same header on another registry: its audience is alpha's
    assert bearer(gateway, BETA, token).request("GET", path).status_code == 401
