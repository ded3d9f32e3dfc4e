"""Revocation across two replicas sharing PostgreSQL (and Redis): an account user revoked with
the CLI, and a one-time token spent on one replica, are refused on both within seconds (the
replica that wrote the tag: at once)."""

from __future__ import annotations

import itertools
import re
import time

import pytest

from tests.gateway.test_user_revocation import REVOKED_WITHIN, WaysIn, all_are, wait_for
from tests.registry_client import RegistryClient
from tests.servers import DOMAIN, ocigate

from .conftest import Replicas

HOST = f"default.{DOMAIN}"  # what a Host naming no registry reaches
_names = itertools.count()


def cli(replicas: Replicas, *args: str) -> str:
    """An `ocigate` command against the replicas' shared stores (as an operator's shell would)."""
    return ocigate(*args, data_dir=replicas.a.data_dir, env=replicas.a.env)


@pytest.mark.parametrize("change", ["delete", "disable", "password"])
def test_a_user_revoked_from_the_cli_is_refused_by_both_replicas(replicas: Replicas, change: str) -> None:
    name = f"ha-user-{change}-{next(_names)}"
    cli(replicas, "user", "create", name, "--password", "ha-user-password-1")
    ways = WaysIn(replicas.gateways, name, "ha-user-password-1", host=HOST)
    ways.login()  # on replica a: its JWT and refresh token are good on b too
    statuses = ways.statuses()
    assert statuses == dict.fromkeys(statuses, 200)
    if change == "password":
        cli(replicas, "user", "password", name, "--password", "ha-user-password-2")
    else:
        cli(replicas, "user", change, name)
    statuses = wait_for(ways, all_are(401), REVOKED_WITHIN)
    assert statuses == dict.fromkeys(statuses, 401)


def test_a_one_time_token_spent_on_one_replica_is_refused_by_both(replicas: Replicas) -> None:
    name = f"ha-once-{next(_names)}"
    output = cli(
        replicas, "token", "create", name, "--registry", "default", "--scope", "ci/*:pull,push", "--one-time"
    )
    match = re.search(r"password \(shown once\): (\S+)", output)
    assert match is not None, output
    writer, other = (RegistryClient(g.url, auth=(name, match.group(1))) for g in replicas.gateways)
    for client in (writer, other):  # both replicas have seen it alive (and cached its state)
        assert client.request("GET", "/v2/").status_code == 200
    writer.push_image("ci/app", "v1")
    assert writer.request("POST", "/v2/ci/app/blobs/uploads/").status_code == 401  # at once
    deadline = time.monotonic() + REVOKED_WITHIN
    while (status := other.request("POST", "/v2/ci/app/blobs/uploads/").status_code) != 401:
        assert time.monotonic() < deadline, f"still {status} on the other replica"
        time.sleep(0.2)
