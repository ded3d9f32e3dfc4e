"""Console sessions on the management API: sign-in, the cookie, CSRF and origin checks, the
guessing throttle, revocation with the user, expiry and sign-out (the browser's side of these
is tests/e2e/test_console.py)."""

from __future__ import annotations

import hashlib
import re
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.servers import ADMIN_PASSWORD, ADMIN_USER, DOMAIN, Gateway, ocigate

from .conftest import Api, messages, unique_name

COOKIE = "ocigate_session"
SCRIPTED = {"X-Requested-With": "XMLHttpRequest"}


class Console:
    """A browser's view of the API: the session cookie, and the CSRF token when asked to."""

    def __init__(
        self,
        gateway: Gateway,
        username: str = ADMIN_USER,
        password: str = ADMIN_PASSWORD,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.gateway = gateway
        self.http = requests.Session()
        self.signed_in = self.http.post(
            f"{gateway.url}/api/sessions",
            json={"username": username, "password": password},
            headers=headers,
            timeout=30,
        )
        body = self.signed_in.json() if self.signed_in.status_code == 201 else {}
        self.csrf = body.get("properties", {}).get("csrfToken", "")

    @property
    def session_id(self) -> str:
        return self.http.cookies[COOKIE]

    def request(self, method: str, path: str, *, csrf: bool = True, **kwargs: Any) -> requests.Response:
        headers = {**SCRIPTED, **kwargs.pop("headers", {})}
        if csrf:
            headers["X-CSRF-Token"] = self.csrf
        return self.http.request(method, self.gateway.url + path, headers=headers, timeout=30, **kwargs)


def sign_in(gateway: Gateway, username: str, password: str, **headers: str) -> requests.Response:
    return requests.post(
        f"{gateway.url}/api/sessions",
        json={"username": username, "password": password},
        headers={**SCRIPTED, **headers},
        timeout=30,
    )


def password_checks(gateway: Gateway) -> int:
    text = requests.get(f"{gateway.url}/metrics", timeout=30).text
    found = re.search(r"^ocigate_auth_password_checks_total ([0-9.e+]+)$", text, re.MULTILINE)
    assert found is not None, text
    return int(float(found.group(1)))


def test_sign_in_gives_an_httponly_strict_cookie_and_only_its_hash_is_stored(
    management_gateway: Gateway, api: Api
) -> None:
    console = Console(management_gateway)
    response = console.signed_in
    assert response.status_code == 201, response.text
    assert response.headers["Location"] == "/api/sessions/current"
    assert response.headers["Cache-Control"] == "no-store"
    attributes = [part.strip() for part in response.headers["Set-Cookie"].split(";")]
    assert attributes[0] == f"{COOKIE}={console.session_id}"
    # no Secure: this is plain HTTP
    assert set(attributes[1:]) == {"HttpOnly", "Max-Age=28800", "Path=/", "SameSite=Strict"}
    body = response.json()
    assert body["properties"] == {"username": ADMIN_USER, "csrfToken": console.csrf}
    assert len(console.session_id) == 43
    assert len(console.csrf) == 43

    # the API takes the cookie alone; reads need no CSRF token
    assert console.request("GET", "/api/registries", csrf=False).status_code == 200
    current = console.request("GET", "/api/sessions/current", csrf=False)
    assert current.status_code == 200
    assert current.json() == body
    # HTTP Basic has no session
    assert api.get("/api/sessions/current").status_code == 404

    # SECURITY: the database holds the id's hash, never the id
    database = sqlite3.connect(management_gateway.data_dir / "metadata.db")
    try:
        hashes = [row[0] for row in database.execute("SELECT id_hash FROM console_sessions")]
        dump = "\n".join(database.iterdump())
    finally:
        database.close()
    assert hashlib.sha256(console.session_id.encode()).hexdigest() in hashes
    assert console.session_id not in dump
    assert console.csrf not in dump


def test_a_change_with_the_session_needs_its_csrf_token_and_the_same_origin(
    management_gateway: Gateway,
) -> None:
    console = Console(management_gateway)
    other = Console(management_gateway)
    create = {"name": unique_name(), "location": "local"}
    host = f"127.0.0.1:{management_gateway.port}"

    def post(csrf: bool = True, **headers: str) -> requests.Response:
        return console.request("POST", "/api/registries", csrf=csrf, json=create, headers=headers)

    refused = [
        post(csrf=False),
        post(csrf=False, **{"X-CSRF-Token": "x" * 43}),
        post(csrf=False, **{"X-CSRF-Token": other.csrf}),  # another session's
        post(Origin="http://evil.example"),
        post(Origin="null"),
        post(**{"Sec-Fetch-Site": "same-site"}),
        post(**{"Sec-Fetch-Site": "cross-site"}),
    ]
    for response in refused:
        assert response.status_code == 403, response.text
        assert response.json()["messages"][0]["errorCode"] == "FORBIDDEN"
    assert "CSRF token" in messages(refused[0])
    assert "cross-origin" in messages(refused[3])

    same_origin = {"Origin": f"http://{host}", "Sec-Fetch-Site": "same-origin"}
    created = post(**same_origin)
    assert created.status_code == 201, created.text
    assert created.json()["properties"]["name"] == create["name"]
    patched = console.request("PATCH", created.json()["href"], json={"apiSubnetAllowList": ["10.0.0.0/8"]})
    assert patched.status_code == 200
    assert console.request("DELETE", created.json()["href"], csrf=False).status_code == 403
    assert console.request("DELETE", created.json()["href"]).status_code == 204
    # the actions are the session user's, in the trail
    trail = console.request("GET", "/api/audit", csrf=False, params={"action": "registry."}).json()
    assert [entry["properties"]["actor"] for entry in trail["items"][:3]] == [ADMIN_USER] * 3

    # nor can another origin sign a visitor in under its own account (login CSRF)
    elsewhere = sign_in(management_gateway, ADMIN_USER, ADMIN_PASSWORD, Origin="http://evil.example")
    assert elsewhere.status_code == 403
    assert "Set-Cookie" not in elsewhere.headers


def test_a_wrong_password_an_unknown_user_and_a_registry_token_get_no_session(
    management_gateway: Gateway, api: Api, registry: dict[str, Any]
) -> None:
    before = password_checks(management_gateway)
    wrong = sign_in(management_gateway, ADMIN_USER, "not-the-password")
    unknown = sign_in(management_gateway, "nobody-" + unique_name(), "not-the-password")
    # SECURITY: an unknown user costs a hash as a known one does (same time, nothing learnt)
    assert password_checks(management_gateway) - before == 2
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert messages(response) == "invalid username or password"
        assert "Set-Cookie" not in response.headers
        # a scripted request gets a challenge browsers do not answer with their own dialog
        assert response.headers["WWW-Authenticate"].startswith("Session ")
    plain = requests.post(
        f"{management_gateway.url}/api/sessions", json={"username": ADMIN_USER, "password": "x"}, timeout=30
    )
    assert plain.headers["WWW-Authenticate"].startswith("Basic ")

    token = api.create_token(registry)["properties"]["credentials"]
    robot = sign_in(management_gateway, token["username"], token["password"])
    assert robot.status_code == 403
    assert "registry tokens cannot" in messages(robot)
    assert "Set-Cookie" not in robot.headers

    invalid = requests.post(f"{management_gateway.url}/api/sessions", json={"username": "admin"}, timeout=30)
    assert invalid.status_code == 400
    assert "password" in messages(invalid)


def test_deleting_disabling_or_repasswording_the_user_ends_its_sessions(management_gateway: Gateway) -> None:
    username, password = unique_name("carol"), "carols-password-1"
    data_dir = management_gateway.data_dir
    ocigate("user", "create", username, "--password", password, data_dir=data_dir)

    def alive(console: Console) -> int:
        return console.request("GET", "/api/sessions/current", csrf=False).status_code

    console = Console(management_gateway, username, password)
    assert alive(console) == 200
    ocigate("user", "password", username, "--password", "carols-password-2", data_dir=data_dir)
    assert alive(console) == 401  # read with the user's row: no cache to wait for
    password = "carols-password-2"

    console = Console(management_gateway, username, password)
    assert alive(console) == 200
    ocigate("user", "disable", username, data_dir=data_dir)
    assert alive(console) == 401
    ocigate("user", "enable", username, data_dir=data_dir)
    assert alive(console) == 401  # enabling again brings back the password, not the session
    console = Console(management_gateway, username, password)
    assert console.signed_in.status_code == 201, console.signed_in.text
    assert alive(console) == 200

    ocigate("user", "delete", username, data_dir=data_dir)
    assert alive(console) == 401
    # a new user of the same name inherits nothing
    ocigate("user", "create", username, "--password", password, data_dir=data_dir)
    assert alive(console) == 401
    ocigate("user", "delete", username, data_dir=data_dir)


def test_sign_out_ends_the_session_for_good(management_gateway: Gateway) -> None:
    console = Console(management_gateway)
    session_id = console.session_id
    assert console.request("DELETE", "/api/sessions/current", csrf=False).status_code == 403
    signed_out = console.request("DELETE", "/api/sessions/current")
    assert signed_out.status_code == 204
    assert f"{COOKIE}=" in signed_out.headers["Set-Cookie"]
    assert "Max-Age=0" in signed_out.headers["Set-Cookie"]
    replayed = requests.get(
        f"{management_gateway.url}/api/registries", cookies={COOKIE: session_id}, headers=SCRIPTED, timeout=30
    )
    assert replayed.status_code == 401
    assert messages(replayed) == "your console session has ended: sign in again"
    trail = Api(management_gateway, (ADMIN_USER, ADMIN_PASSWORD)).get(
        "/api/audit", params={"action": "session.", "limit": 2}
    )
    assert [entry["properties"]["action"] for entry in trail.json()["items"]] == [
        "session.delete",
        "session.create",
    ]


def test_the_console_on_a_registrys_host_obeys_its_subnet_allow_list(
    management_gateway: Gateway, api: Api, registry: dict[str, Any]
) -> None:
    """Sign-in and every session request on a registry's hostname are refused from outside its
    apiSubnetAllowList, as its v2 and token routes are (the tests come from 127.0.0.1)."""
    fenced = {"Host": f"{registry['properties']['name']}.{DOMAIN}:{management_gateway.port}"}
    console = Console(management_gateway, headers=fenced)
    assert console.signed_in.status_code == 201, console.signed_in.text
    assert api.patch(registry["href"], {"apiSubnetAllowList": ["10.0.0.0/8"]}).status_code == 200

    before = password_checks(management_gateway)
    refused = sign_in(management_gateway, ADMIN_USER, ADMIN_PASSWORD, **fenced)
    assert refused.status_code == 403, refused.text
    assert "apiSubnetAllowList" in messages(refused)
    assert "Set-Cookie" not in refused.headers
    assert password_checks(management_gateway) == before  # refused before any password check
    # the session opened there before the list changed: refused from now on, reads too
    assert console.request("GET", "/api/registries", csrf=False, headers=fenced).status_code == 403
    assert console.request("DELETE", "/api/sessions/current", headers=fenced).status_code == 403
    # other hosts serve the console as before
    assert sign_in(management_gateway, ADMIN_USER, ADMIN_PASSWORD).status_code == 201

    assert api.patch(registry["href"], {"apiSubnetAllowList": ["127.0.0.0/8"]}).status_code == 200
    assert console.request("GET", "/api/registries", csrf=False, headers=fenced).status_code == 200
    assert sign_in(management_gateway, ADMIN_USER, ADMIN_PASSWORD, **fenced).status_code == 201


@pytest.fixture(scope="module")
def strict_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """Sessions of two seconds, and two failed logins before the throttle answers."""
    env = {"OCIGATE_SESSION_TTL": "2", "OCIGATE_LOGIN_FAILURES": "2"}
    server = Gateway(tmp_path_factory.mktemp("sessions") / "data", env).start()
    yield server
    server.stop()


def test_sign_in_goes_through_the_guessing_throttle(strict_gateway: Gateway) -> None:
    username, password = "dave", "daves-password-12"
    ocigate("user", "create", username, "--password", password, data_dir=strict_gateway.data_dir)
    for _ in range(2):
        assert sign_in(strict_gateway, username, "wrong-password").status_code == 401
    # throttled before any hash: the right password too
    before = password_checks(strict_gateway)
    throttled = sign_in(strict_gateway, username, password)
    assert throttled.status_code == 429
    assert int(throttled.headers["Retry-After"]) >= 1
    assert "Set-Cookie" not in throttled.headers
    assert password_checks(strict_gateway) == before


def test_a_session_expires(strict_gateway: Gateway) -> None:
    console = Console(strict_gateway)
    assert console.signed_in.status_code == 201
    body = console.signed_in.json()["metadata"]
    assert body["expiresAt"] > body["createdAt"]
    deadline = time.monotonic() + 60
    status = 200
    while status == 200 and time.monotonic() < deadline:
        status = console.request("GET", "/api/sessions/current", csrf=False).status_code
        time.sleep(0.2)
    assert status == 401
