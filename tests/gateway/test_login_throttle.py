"""Password guessing: after a handful of failures, 429 TOOMANYREQUESTS with Retry-After, before
any hash is computed; nobody can lock a user out by naming them; unknown users cost a hash as
known ones do. Each test's clients are addresses of their own in 127.0.0.0/8."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests

from tests.registry_client import session_from
from tests.servers import ADMIN_PASSWORD, ADMIN_USER, Gateway, ocigate
from tests.services.redis import RedisServer

FAILURES = 3  # per username and address; 5x per address
LONG = {"OCIGATE_LOGIN_FAILURES": str(FAILURES), "OCIGATE_LOGIN_WINDOW": "600"}  # nothing drains meanwhile
REDIS_DB = 7


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gateway = Gateway(tmp_path_factory.mktemp("throttle") / "data", env=LONG).start()
    yield gateway
    gateway.stop()


def token_status(gateway: Gateway, source: str, username: str, password: str) -> requests.Response:
    return session_from(source).get(f"{gateway.url}/token", auth=(username, password), timeout=30)


WAYS = ("token", "password grant", "basic", "management")


def way_in(gateway: Gateway, source: str, way: str, username: str, password: str) -> requests.Response:
    """One way of logging in, from the address `source`."""
    session, url, credentials = session_from(source), gateway.url, (username, password)
    if way == "token":
        return session.get(f"{url}/token", auth=credentials, timeout=30)
    if way == "password grant":
        form = {"grant_type": "password", "username": username, "password": password}
        return session.post(f"{url}/token", data=form, timeout=30)
    if way == "basic":
        return session.get(f"{url}/v2/", auth=credentials, timeout=30)
    return session.get(f"{url}/api/registries", auth=credentials, timeout=30)


def every_way(gateway: Gateway, source: str, username: str, password: str) -> dict[str, requests.Response]:
    return {way: way_in(gateway, source, way, username, password) for way in WAYS}


def password_checks(gateway: Gateway) -> int:
    text = requests.get(f"{gateway.url}/metrics", timeout=30).text
    match = re.search(r"^ocigate_auth_password_checks_total (\d+)(\.0)?$", text, re.MULTILINE)
    assert match is not None, text
    return int(match.group(1))


def test_a_guessing_address_gets_429_without_a_hash_computed(guarded: Gateway) -> None:
    guesser = "127.0.0.11"
    assert [
        token_status(guarded, guesser, ADMIN_USER, f"guess-{i}").status_code for i in range(FAILURES)
    ] == [401] * FAILURES
    checks = password_checks(guarded)
    refused = token_status(guarded, guesser, ADMIN_USER, "guess-again")
    assert refused.status_code == 429
    assert refused.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
    assert "too many failed logins" in refused.json()["errors"][0]["message"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 600
    # every way of logging in is refused from there for that user, the right password included
    # (answering it would tell a guesser that it had found the password)
    for way, response in every_way(guarded, guesser, ADMIN_USER, ADMIN_PASSWORD).items():
        assert response.status_code == 429, way
        assert int(response.headers["Retry-After"]) >= 1, way
    management = way_in(guarded, guesser, "management", ADMIN_USER, "guess-more")
    assert management.json()["messages"][0]["errorCode"] == "TOO_MANY_REQUESTS"
    assert password_checks(guarded) == checks  # no hash computed for any refused attempt
    # a JWT needs no password: minted before, it keeps working (tokens are not throttled)


def test_a_user_under_attack_still_logs_in_from_elsewhere(guarded: Gateway) -> None:
    attacked = "attacked-user"
    ocigate("user", "create", attacked, "--password", "attacked-password-1", data_dir=guarded.data_dir)
    for n, attacker in enumerate(("127.0.0.21", "127.0.0.22", "127.0.0.23", "127.0.0.24")):
        # the username is soon hot (more than FAILURES failures): from then on, each new address
        # gets a guess and is then held off
        assert token_status(guarded, attacker, attacked, f"guess-{n}").status_code == 401
        assert token_status(guarded, attacker, attacked, f"guess-{n}b").status_code == (
            401 if n == 0 else 429
        )
    # the user, from an address that has not failed for them, gets in
    for way, response in every_way(guarded, "127.0.0.25", attacked, "attacked-password-1").items():
        assert response.status_code == 200, way
    # and a typo there counts: with the username hot, that address waits too
    assert token_status(guarded, "127.0.0.26", attacked, "typo").status_code == 401
    assert token_status(guarded, "127.0.0.26", attacked, "attacked-password-1").status_code == 429
    assert token_status(guarded, "127.0.0.27", attacked, "attacked-password-1").status_code == 200


def test_spraying_many_usernames_from_one_address_is_throttled(guarded: Gateway) -> None:
    sprayer = "127.0.0.31"
    statuses = [
        token_status(guarded, sprayer, f"user-{i}", "Summer2026!").status_code for i in range(5 * FAILURES)
    ]
    assert statuses == [401] * (5 * FAILURES)
    assert token_status(guarded, sprayer, "user-new", "Summer2026!").status_code == 429
    assert (
        token_status(guarded, "127.0.0.32", "user-new", "Summer2026!").status_code == 401
    )  # others unaffected


def test_unknown_users_cost_a_password_check_as_known_ones_do(guarded: Gateway) -> None:
    """Timing: an unknown username is checked against a dummy hash, so it takes as long."""
    robot_password = "ogt_" + "0" * 32 + "_" + "A" * 43  # the form of a robot token's, of no token
    for username, password in (
        ("nobody-by-that-name", "some-password"),  # unknown user
        (ADMIN_USER, "wrong-password"),  # known user, wrong password
        ("robot", robot_password),
    ):
        for n, way in enumerate(WAYS):
            before = password_checks(guarded)
            response = way_in(guarded, f"127.0.0.{41 + n}", way, username, password)
            if way == "management" and password == robot_password:
                # robot tokens are refused by the management API by their form alone
                assert (response.status_code, password_checks(guarded)) == (403, before)
                continue
            assert response.status_code == 401, (username, way)
            assert password_checks(guarded) == before + 1, (username, way)


def test_a_throttled_address_gets_one_attempt_per_retry_after(tmp_path: Path) -> None:
    env = {"OCIGATE_LOGIN_FAILURES": str(FAILURES), "OCIGATE_LOGIN_WINDOW": "30"}  # one per 10 s
    gateway = Gateway(tmp_path / "data", env=env).start()
    try:
        source = "127.0.0.51"
        answers = [token_status(gateway, source, ADMIN_USER, "guess") for _ in range(FAILURES + 1)]
        assert [a.status_code for a in answers] == [401] * FAILURES + [429]  # 10 s each: none drains
        refused = answers[-1]
        wait = int(refused.headers["Retry-After"])
        assert 1 <= wait <= 10
        time.sleep(wait)
        assert token_status(gateway, source, ADMIN_USER, ADMIN_PASSWORD).status_code == 200
    finally:
        gateway.stop()


def test_replicas_sharing_redis_count_failures_together(tmp_path: Path, redis_server: RedisServer) -> None:
    url = redis_server.url.rpartition("/")[0] + f"/{REDIS_DB}"
    with redis.Redis.from_url(url) as db:
        db.flushdb()
    env = {**LONG, "OCIGATE_REDIS_URL": url, "OCIGATE_KEYS_DIR": str(tmp_path / "keys")}
    first = Gateway(tmp_path / "a", env=env).start()
    second = Gateway(tmp_path / "b", env=env).start()
    try:
        source = "127.0.0.61"
        for i in range(FAILURES):
            assert token_status((first, second)[i % 2], source, ADMIN_USER, f"guess-{i}").status_code == 401
        for gateway in (first, second):
            assert token_status(gateway, source, ADMIN_USER, "guess").status_code == 429
    finally:
        first.stop()
        second.stop()
