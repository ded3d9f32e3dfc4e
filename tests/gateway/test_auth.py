"""Token auth over real sockets, and the attacks that must fail."""

from __future__ import annotations

import re
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jwt
import pytest
import requests

from tests.registry_client import RegistryClient, digest_of, session_from
from tests.servers import ADMIN_PASSWORD, ADMIN_USER, DOMAIN, Gateway, ocigate

ALPHA = f"alpha.{DOMAIN}"
BETA = f"beta.{DOMAIN}"


def create_token(
    gateway: Gateway, name: str, *scopes: str, registry: str = "alpha", one_time: bool = False
) -> str:
    args = ["token", "create", name, "--registry", registry, *(f"--scope={s}" for s in scopes)]
    output = ocigate(*args, *(["--one-time"] if one_time else []), data_dir=gateway.data_dir)
    match = re.search(r"password \(shown once\): (\S+)", output)
    assert match is not None, output
    assert f"docker login {registry}.{DOMAIN} -u {name} -p {match.group(1)}" in output
    return match.group(1)


def fetch_token(
    gateway: Gateway, host: str, credentials: tuple[str, str] | None, *scopes: str, **params: str
) -> requests.Response:
    return requests.get(
        f"{gateway.url}/token",
        params=[("service", host), *(("scope", s) for s in scopes), *params.items()],
        headers={"Host": f"{host}:{gateway.port}"},
        auth=credentials,
        timeout=30,
    )


def bearer(gateway: Gateway, host: str, token: str) -> RegistryClient:
    client = RegistryClient(gateway.url, host=f"{host}:{gateway.port}", auth=None)
    client.session.headers["Authorization"] = f"Bearer {token}"
    return client


def access_of(token: str) -> list[dict[str, object]]:
    return jwt.decode(token, options={"verify_signature": False})["access"]


def wait_until(predicate, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("GET", "/v2/", None),
        ("GET", "/v2/_catalog", "registry:catalog:*"),
        ("GET", "/v2/team/app/manifests/v1", "repository:team/app:pull"),
        ("HEAD", "/v2/team/app/blobs/sha256:" + "0" * 64, "repository:team/app:pull"),
        ("GET", "/v2/team/app/tags/list", "repository:team/app:pull"),
        ("POST", "/v2/team/app/blobs/uploads/", "repository:team/app:pull,push"),
        ("PUT", "/v2/team/app/manifests/v1", "repository:team/app:pull,push"),
        ("DELETE", "/v2/team/app/manifests/v1", "repository:team/app:delete"),
    ],
)
def test_nothing_anonymous_gets_in(gateway: Gateway, method: str, path: str, scope: str | None) -> None:
    anonymous = RegistryClient(gateway.url, host=f"{ALPHA}:{gateway.port}", auth=None)
    response = anonymous.request(method, path)
    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith(f'Bearer realm="http://{ALPHA}:{gateway.port}/token",service="{ALPHA}"')
    assert (f'scope="{scope}"' in challenge) == (scope is not None)
    if method != "HEAD":
        assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"


def test_login_checks_credentials_even_without_scope(gateway: Gateway) -> None:
    assert fetch_token(gateway, ALPHA, (ADMIN_USER, "wrong password")).status_code == 401
    assert fetch_token(gateway, ALPHA, None).status_code == 401
    response = fetch_token(
        gateway, ALPHA, (ADMIN_USER, ADMIN_PASSWORD), offline_token="true", client_id="docker"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token"] == body["access_token"]
    assert body["expires_in"] > 0
    assert body["issued_at"].endswith("Z")
    assert access_of(body["token"]) == []
    # docker refreshes with POST grant_type=refresh_token
    refreshed = requests.post(
        f"{gateway.url}/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": body["refresh_token"],
            "service": ALPHA,
            "scope": "repository:team/app:pull registry:catalog:*",
            "client_id": "docker",
        },
        headers={"Host": f"{ALPHA}:{gateway.port}"},
        timeout=30,
    )
    assert refreshed.status_code == 200
    assert {e["name"] for e in access_of(refreshed.json()["token"])} == {"team/app", "catalog"}
    # a refresh token is not an access token
    assert bearer(gateway, ALPHA, body["refresh_token"]).request("GET", "/v2/").status_code == 401


def test_containerd_post_password_grant(gateway: Gateway) -> None:
    response = requests.post(
        f"{gateway.url}/token",
        data={
            "grant_type": "password",
            "username": ADMIN_USER,
            "password": ADMIN_PASSWORD,
            "service": ALPHA,
            "client_id": "containerd-client",
            "scope": "repository:a:pull,push repository:b:pull",
        },
        headers={"Host": f"{ALPHA}:{gateway.port}"},
        timeout=30,
    )
    assert response.status_code == 200
    assert access_of(response.json()["token"]) == [
        {"type": "repository", "name": "a", "actions": ["pull", "push"]},
        {"type": "repository", "name": "b", "actions": ["pull"]},
    ]
    bad = requests.post(
        f"{gateway.url}/token",
        data={"grant_type": "password", "username": ADMIN_USER, "password": "nope"},
        headers={"Host": f"{ALPHA}:{gateway.port}"},
        timeout=30,
    )
    assert bad.status_code == 401


def test_pull_only_token_gets_pull_only_and_cannot_push(gateway: Gateway) -> None:
    admin = RegistryClient(gateway.url, host=f"{ALPHA}:{gateway.port}")
    image = admin.push_image("team/readonly", "v1")
    password = create_token(gateway, "reader", "team/*:pull")
    response = fetch_token(gateway, ALPHA, ("reader", password), "repository:team/readonly:pull,push,delete")
    assert response.status_code == 200  # a partial grant is no error
    token = response.json()["token"]
    assert access_of(token) == [{"type": "repository", "name": "team/readonly", "actions": ["pull"]}]
    reader = bearer(gateway, ALPHA, token)
    assert reader.request("GET", "/v2/team/readonly/manifests/v1").content == image.manifest
    push = reader.request("POST", "/v2/team/readonly/blobs/uploads/")
    assert push.status_code == 401
    assert 'error="insufficient_scope"' in push.headers["WWW-Authenticate"]
    assert reader.request("DELETE", f"/v2/team/readonly/manifests/{image.digest}").status_code == 401
    # with Basic on v2 the same token is refused with 403
    basic = RegistryClient(gateway.url, host=f"{ALPHA}:{gateway.port}", auth=("reader", password))
    assert basic.request("GET", "/v2/team/readonly/manifests/v1").status_code == 200
    assert basic.request("POST", "/v2/team/readonly/blobs/uploads/").status_code == 403
    assert basic.request("GET", "/v2/other/manifests/v1").status_code == 403  # outside team/*
    assert basic.request("GET", "/v2/_catalog").status_code == 403  # no registry scope


def test_odd_scopes_grant_nothing(gateway: Gateway) -> None:
    password = create_token(gateway, "odd", "*:pull,push")
    odd = [
        "repository:../x:pull",
        "repository:%2e%2e/x:push",
        "repository:A:pull",
        "registry:catalog:*",
        "repository:x:admin",
        "user:admin:*",
    ]
    response = fetch_token(gateway, ALPHA, ("odd", password), *odd)
    assert response.status_code == 200
    assert access_of(response.json()["token"]) == []


def test_token_of_one_registry_is_useless_on_another(gateway: Gateway) -> None:
    password = create_token(gateway, "alpha-only", "*:pull,push")
    assert fetch_token(gateway, BETA, ("alpha-only", password), "repository:x:pull").status_code == 401
    on_beta = RegistryClient(gateway.url, host=f"{BETA}:{gateway.port}", auth=("alpha-only", password))
    assert on_beta.request("GET", "/v2/").status_code == 401
    token = fetch_token(gateway, ALPHA, ("alpha-only", password), "repository:x:pull").json()["token"]
    assert bearer(gateway, ALPHA, token).request("GET", "/v2/").status_code == 200
    replayed = bearer(gateway, BETA, token).request("GET", "/v2/x/tags/list")
    assert replayed.status_code == 401  # aud is alpha's
    # the account user's JWT for alpha is useless on beta too, though the user may use beta
    admin_token = fetch_token(gateway, ALPHA, (ADMIN_USER, ADMIN_PASSWORD), "repository:x:pull").json()[
        "token"
    ]
    assert bearer(gateway, BETA, admin_token).request("GET", "/v2/").status_code == 401


def test_account_user_reaches_every_registry_of_the_account_only(gateway: Gateway) -> None:
    for host in (ALPHA, BETA):
        admin = RegistryClient(gateway.url, host=f"{host}:{gateway.port}")
        assert admin.request("GET", "/v2/").status_code == 200
    ocigate(
        "user",
        "create",
        "mallory",
        "--account",
        "other",
        "--password",
        "mallory-password-123",
        data_dir=gateway.data_dir,
    )
    ocigate("registry", "create", "mallorys", "--account", "other", data_dir=gateway.data_dir)
    mallory = RegistryClient(
        gateway.url, host=f"{ALPHA}:{gateway.port}", auth=("mallory", "mallory-password-123")
    )
    assert mallory.request("GET", "/v2/").status_code == 401
    assert fetch_token(gateway, ALPHA, ("mallory", "mallory-password-123")).status_code == 401
    own = RegistryClient(
        gateway.url, host=f"mallorys.{DOMAIN}:{gateway.port}", auth=("mallory", "mallory-password-123")
    )
    assert wait_until(lambda: own.request("GET", "/v2/").status_code == 200)
    admin_there = RegistryClient(gateway.url, host=f"mallorys.{DOMAIN}:{gateway.port}")
    assert admin_there.request("GET", "/v2/").status_code == 401


@pytest.mark.parametrize("change", ["disable", "delete", "expire"])
def test_revoked_tokens_and_their_jwts_stop_within_seconds(gateway: Gateway, change: str) -> None:
    name = f"revoke-{change}"
    password = create_token(gateway, name, "*:pull")
    token = fetch_token(gateway, ALPHA, (name, password), "repository:x:pull").json()["token"]
    with_jwt = bearer(gateway, ALPHA, token)
    with_basic = RegistryClient(gateway.url, host=f"{ALPHA}:{gateway.port}", auth=(name, password))
    assert with_jwt.request("GET", "/v2/").status_code == 200
    assert with_basic.request("GET", "/v2/").status_code == 200
    if change == "expire":  # as if the expiry date had passed
        with sqlite3.connect(gateway.data_dir / "metadata.db") as db:
            db.execute("UPDATE tokens SET expires_at = 1 WHERE name = ?", (name,))
    else:
        ocigate("token", change, name, "--registry", "alpha", data_dir=gateway.data_dir)
    assert wait_until(lambda: with_jwt.request("GET", "/v2/").status_code == 401, seconds=4)
    assert with_basic.request("GET", "/v2/").status_code == 401
    assert fetch_token(gateway, ALPHA, (name, password)).status_code == 401


def test_one_time_token_pushes_one_image_then_is_dead(gateway: Gateway) -> None:
    password = create_token(gateway, "ci-once", "ci/*:pull,push", one_time=True)
    ci = RegistryClient(gateway.url, host=f"{ALPHA}:{gateway.port}", auth=("ci-once", password))
    # a multi-arch push: children by digest (no tag yet), then the index by tag
    children = [ci.push_image("ci/app", None, seed=arch) for arch in ("amd64", "arm64")]
    index = (
        '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":['
        + ",".join(
            f'{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{c.digest}","size":{len(c.manifest)}}}'
            for c in children
        )
        + "]}"
    ).encode()
    ci.push_manifest("ci/app", "v1", index, "application/vnd.oci.image.index.v1+json")
    second = ci.request(
        "PUT",
        "/v2/ci/app/manifests/v2",
        data=index,
        headers={"Content-Type": "application/vnd.oci.image.index.v1+json"},
    )
    assert second.status_code in (401, 403)
    assert wait_until(lambda: ci.request("GET", "/v2/").status_code == 401, seconds=4)
    assert fetch_token(gateway, ALPHA, ("ci-once", password)).status_code == 401
    admin = RegistryClient(gateway.url, host=f"{ALPHA}:{gateway.port}")
    assert admin.request("GET", "/v2/ci/app/tags/list").json()["tags"] == ["v1"]


def test_one_time_token_is_spent_at_once_when_its_tag_is_written(gateway: Gateway) -> None:
    """No request after the tag goes through, not even within the token-state cache's seconds."""
    password = create_token(gateway, "ci-spent", "spent/*:pull,push", one_time=True)
    basic = RegistryClient(gateway.url, host=f"{ALPHA}:{gateway.port}", auth=("ci-spent", password))
    jwt_before = fetch_token(gateway, ALPHA, ("ci-spent", password), "repository:spent/app:pull,push")
    with_jwt = bearer(gateway, ALPHA, jwt_before.json()["token"])
    assert with_jwt.request("POST", "/v2/spent/app/blobs/uploads/").status_code == 202
    basic.push_image("spent/app", "v1")
    for client in (basic, with_jwt):  # the very next requests, by Basic and by a JWT minted before
        assert client.request("POST", "/v2/spent/app/blobs/uploads/").status_code == 401
        assert client.request("GET", "/v2/spent/app/manifests/v1").status_code == 401
    assert fetch_token(gateway, ALPHA, ("ci-spent", password)).status_code == 401


def test_one_time_token_raced_by_ten_pipelines_writes_one_tag(gateway: Gateway) -> None:
    password = create_token(gateway, "ci-race", "race/*:pull,push", one_time=True)
    admin = RegistryClient(gateway.url, host=f"{ALPHA}:{gateway.port}")
    image = admin.push_image("race/app", None, seed="race")
    tokens = [
        fetch_token(gateway, ALPHA, ("ci-race", password), "repository:race/app:pull,push").json()["token"]
        for _ in range(10)
    ]

    def push(i: int) -> int:
        client = bearer(gateway, ALPHA, tokens[i])
        response = client.request(
            "PUT",
            f"/v2/race/app/manifests/run-{i}",
            data=image.manifest,
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        )
        return response.status_code

    with ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(push, range(10)))
    assert statuses.count(201) == 1, statuses
    assert len(admin.request("GET", "/v2/race/app/tags/list").json()["tags"]) == 1


def test_secrets_are_stored_hashed(gateway: Gateway) -> None:
    password = create_token(gateway, "hashed", "*:pull")
    raw = b"".join(p.read_bytes() for p in gateway.data_dir.glob("metadata.db*"))
    assert password.encode() not in raw
    secret = password.split("_", 2)[2]  # ogt_<token id>_<secret>; the secret may hold "_" too
    assert secret.encode() not in raw
    assert ADMIN_PASSWORD.encode() not in raw
    assert b"scrypt$" in raw


def test_mount_needs_pull_on_the_source(gateway: Gateway) -> None:
    admin = RegistryClient(gateway.url, host=f"{ALPHA}:{gateway.port}")
    secret_layer = b"a layer only team-secret may read"
    digest = admin.push_blob("secret/app", secret_layer)
    password = create_token(gateway, "mounter", "public/*:pull,push")
    token = fetch_token(
        gateway, ALPHA, ("mounter", password), "repository:public/app:pull,push", "repository:secret/app:pull"
    ).json()["token"]
    mount = bearer(gateway, ALPHA, token).request(
        "POST", "/v2/public/app/blobs/uploads/", params={"mount": digest, "from": "secret/app"}
    )
    assert mount.status_code == 202  # not mounted: an ordinary upload starts instead
    assert admin.request("HEAD", f"/v2/public/app/blobs/{digest}").status_code == 404
    assert digest == digest_of(secret_layer)


def test_guessing_passwords_at_the_token_endpoint_is_rate_limited(tmp_path: Path) -> None:
    """The request rate limit applies to `/token` too (failed-login throttling aside, off here)."""
    server = Gateway(tmp_path / "data", env={"OCIGATE_LIMIT_RPS": "0.05", "OCIGATE_LIMIT_BURST": "3"}).start()
    try:
        guesser = session_from("127.0.0.81")  # an address of its own: start-up probes took nothing
        statuses = [
            guesser.get(f"{server.url}/token", auth=(ADMIN_USER, f"guess-{i}"), timeout=30).status_code
            for i in range(12)
        ]
        assert statuses == [401] * 3 + [429] * 9  # the burst; nothing refills in 20 s
        limited = guesser.get(f"{server.url}/token", auth=(ADMIN_USER, "guess"), timeout=30)
        assert limited.status_code == 429
        assert limited.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
        assert int(limited.headers["Retry-After"]) >= 1
    finally:
        server.stop()
