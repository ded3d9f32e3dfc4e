"""Account users are revoked as robot tokens are: deleting, disabling or re-passwording a user
(from the CLI, beside the running gateway) ends every way in within seconds: Basic on `/v2/`
(positive cache included), `/token` with the password, refresh tokens, JWTs minted before, and
the management API."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import requests

from tests.registry_client import RegistryClient
from tests.servers import DOMAIN, Gateway, ocigate

ALPHA = f"alpha.{DOMAIN}"
REVOKED_WITHIN = 10.0  # seconds: the gateways re-read a user's state every 2 s


@dataclass
class WaysIn:
    """Every credential a user can hold, each as a probe answering its HTTP status, on one or
    more gateways (replicas) serving the registry `host`."""

    gateways: tuple[Gateway, ...]
    username: str
    password: str
    host: str = ALPHA
    jwt: str = ""
    refresh_token: str = ""

    def login(self) -> None:
        credentials = (self.username, self.password)
        response = get_token(self.gateways[0], self.host, credentials, offline_token="true")
        assert response.status_code == 200, response.text
        self.jwt, self.refresh_token = response.json()["token"], response.json()["refresh_token"]

    def statuses(self) -> dict[str, int]:
        found = {}
        for n, gateway in enumerate(self.gateways):
            suffix = f" on replica {n}" if len(self.gateways) > 1 else ""
            found |= {f"{way}{suffix}": status for way, status in self._statuses(gateway).items()}
        return found

    def _statuses(self, gateway: Gateway) -> dict[str, int]:
        credentials, url = (self.username, self.password), gateway.url
        host = {"Host": f"{self.host}:{gateway.port}"}
        bearer = {**host, "Authorization": f"Bearer {self.jwt}"}
        password = {"grant_type": "password", "username": self.username, "password": self.password}
        refresh = {"grant_type": "refresh_token", "refresh_token": self.refresh_token}
        return {
            "basic": requests.get(f"{url}/v2/", auth=credentials, headers=host, timeout=30).status_code,
            "jwt": requests.get(f"{url}/v2/", headers=bearer, timeout=30).status_code,
            "token": get_token(gateway, self.host, credentials).status_code,
            "password grant": post_token(gateway, self.host, password).status_code,
            "refresh grant": post_token(gateway, self.host, refresh).status_code,
            "management": requests.get(f"{url}/api/registries", auth=credentials, timeout=30).status_code,
        }


def get_token(gateway: Gateway, host: str, credentials: tuple[str, str], **params: str) -> requests.Response:
    return requests.get(
        f"{gateway.url}/token",
        params={"service": host, "scope": "repository:team/app:pull", **params},
        headers={"Host": f"{host}:{gateway.port}"},
        auth=credentials,
        timeout=30,
    )


def post_token(gateway: Gateway, host: str, form: dict[str, str]) -> requests.Response:
    return requests.post(
        f"{gateway.url}/token",
        data={"service": host, "client_id": "test", "scope": "repository:team/app:pull", **form},
        headers={"Host": f"{host}:{gateway.port}"},
        timeout=30,
    )


def all_are(status: int) -> Callable[[dict[str, int]], bool]:
    return lambda statuses: set(statuses.values()) == {status}


def wait_for(ways: WaysIn, accept: Callable[[dict[str, int]], bool], seconds: float) -> dict[str, int]:
    deadline = time.monotonic() + seconds
    while True:
        statuses = ways.statuses()
        if accept(statuses) or time.monotonic() > deadline:
            return statuses
        time.sleep(0.2)


def new_user(gateway: Gateway, name: str, password: str) -> WaysIn:
    ocigate("user", "create", name, "--password", password, data_dir=gateway.data_dir)
    ways = WaysIn((gateway,), name, password)
    ways.login()
    statuses = ways.statuses()
    assert statuses == dict.fromkeys(statuses, 200)  # every way in works first
    return ways


@pytest.mark.parametrize("change", ["delete", "disable", "password"])
def test_a_revoked_account_user_loses_every_way_in_within_seconds(gateway: Gateway, change: str) -> None:
    ways = new_user(gateway, f"revoked-{change}", "the-old-password-1")
    old_jwt, old_refresh = ways.jwt, ways.refresh_token
    if change == "password":
        ocigate(
            "user", "password", ways.username, "--password", "the-new-password-2", data_dir=gateway.data_dir
        )
    else:
        ocigate("user", change, ways.username, data_dir=gateway.data_dir)

    statuses = wait_for(ways, all_are(401), REVOKED_WITHIN)
    assert statuses == dict.fromkeys(statuses, 401)

    if change == "password":  # the new password works everywhere, and mints live tokens
        ways.password = "the-new-password-2"
        ways.login()
        statuses = ways.statuses()
        assert statuses == dict.fromkeys(statuses, 200)
    elif change == "disable":  # enabled again: the password works, tokens minted before stay dead
        ocigate("user", "enable", ways.username, data_dir=gateway.data_dir)
        statuses = wait_for(ways, lambda s: s["basic"] == 200, REVOKED_WITHIN)
        assert statuses == {**dict.fromkeys(statuses, 200), "jwt": 401, "refresh grant": 401}
    else:  # a new user of the same name does not inherit the old one's tokens
        new_user(gateway, ways.username, "the-old-password-1")
    ways.jwt, ways.refresh_token = old_jwt, old_refresh
    statuses = ways.statuses()
    assert (statuses["jwt"], statuses["refresh grant"]) == (401, 401)


def test_the_cli_refuses_unknown_users_and_short_passwords(gateway: Gateway) -> None:
    for args in (("disable", "nobody-here"), ("enable", "nobody-here"), ("delete", "nobody-here")):
        with pytest.raises(RuntimeError, match="no user 'nobody-here'"):
            ocigate("user", *args, data_dir=gateway.data_dir)
    with pytest.raises(RuntimeError, match="at least 12 characters"):
        ocigate("user", "password", "admin", "--password", "short", data_dir=gateway.data_dir)


def test_a_robot_token_of_a_deleted_users_account_is_unaffected(gateway: Gateway) -> None:
    """Revoking a user touches that user only (robot tokens are the registry's, not the user's)."""
    ways = new_user(gateway, "leaver", "leaver-password-1")
    output = ocigate(
        "token", "create", "stays", "--registry", "alpha", "--scope", "*:pull", data_dir=gateway.data_dir
    )
    password = output.split("password (shown once): ", 1)[1].split()[0]
    ocigate("user", "delete", ways.username, data_dir=gateway.data_dir)
    assert wait_for(ways, all_are(401), REVOKED_WITHIN)["jwt"] == 401
    robot = RegistryClient(gateway.url, host=f"{ALPHA}:{gateway.port}", auth=("stays", password))
    assert robot.request("GET", "/v2/").status_code == 200
