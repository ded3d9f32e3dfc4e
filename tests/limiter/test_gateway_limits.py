"""The limits as clients meet them: real `ocigate serve` processes over real sockets."""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest
import requests

from tests.registry_client import session_from
from tests.servers import Gateway

from .probes import close_all, hold_connections, proxy_v1, served


class StartGateway(Protocol):
    def __call__(self, env: dict[str, str], name: str = "gateway") -> Gateway: ...


@pytest.fixture
def start_gateway(tmp_path: Path) -> Iterator[StartGateway]:
    started: list[Gateway] = []

    def start(env: dict[str, str], name: str = "gateway") -> Gateway:
        # auth off: these tests are about the limiter, which counts before auth anyway
        base = {"OCIGATE_LIMIT_LEASE_SECONDS": "2", "OCIGATE_AUTH": "none"}
        gateway = Gateway(tmp_path / f"{name}{len(started)}", env={**base, **env})
        started.append(gateway)
        gateway.start()
        time.sleep(0.2 if "OCIGATE_LIMIT_RPS" not in env else 1.0)  # start's own probes refill
        return gateway

    yield start
    for gateway in started:
        gateway.stop()


def test_a_limited_request_gets_429_in_words_clients_understand(start_gateway: StartGateway) -> None:
    # one request per 5 s: nothing refills during the test, however slow the machine; the
    # client has an address of its own, so the start-up probes took nothing from it
    gateway = start_gateway({"OCIGATE_LIMIT_RPS": "0.2", "OCIGATE_LIMIT_BURST": "3"})
    session = session_from("127.0.0.71")
    answers = [session.get(f"{gateway.url}/v2/") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    for answer in answers:
        assert answer.headers["RateLimit-Limit"] == "0.2"
        assert int(answer.headers["RateLimit-Remaining"]) >= 0
        assert int(answer.headers["RateLimit-Reset"]) >= 1
    limited = answers[-1]
    assert limited.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
    assert 1 <= int(limited.headers["Retry-After"]) <= 5
    assert limited.headers["RateLimit-Remaining"] == "0"
    assert limited.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    # every route counts, unknown ones and blob reads included
    assert session.get(f"{gateway.url}/v2/a/b/blobs/sha256:{'0' * 64}").status_code == 429
    assert session.get(f"{gateway.url}/nothing-here").status_code == 429
    # health checks and metrics never are
    for path in ("/healthz", "/readyz", "/metrics") * 5:
        assert session.get(gateway.url + path).status_code == 200
    metrics = session.get(f"{gateway.url}/metrics").text
    assert "ocigate_limiter_requests_limited_total 3" in metrics


def test_admitted_responses_carry_the_headers_once_half_the_burst_is_used(
    start_gateway: StartGateway,
) -> None:
    gateway = start_gateway({"OCIGATE_LIMIT_RPS": "0.1", "OCIGATE_LIMIT_BURST": "4"})  # 10 s a request
    session = session_from("127.0.0.72")
    first, second = session.get(f"{gateway.url}/v2/"), session.get(f"{gateway.url}/v2/")
    assert "RateLimit-Remaining" not in first.headers  # far from the limit: nothing to say
    assert second.headers["RateLimit-Remaining"] == "2"
    assert second.headers["RateLimit-Limit"] == "0.1"
    assert 10 < int(second.headers["RateLimit-Reset"]) <= 20
    content = b"layer bytes"
    digest = "sha256:" + hashlib.sha256(content).hexdigest()
    pushed = session.post(f"{gateway.url}/v2/l/r/blobs/uploads/", params={"digest": digest}, data=content)
    assert pushed.status_code == 201
    assert pushed.headers["RateLimit-Remaining"] == "1"
    assert session.get(f"{gateway.url}/v2/l/r/blobs/{digest}").content == content


def test_x_forwarded_for_counts_only_from_trusted_proxies(start_gateway: StartGateway) -> None:
    env = {"OCIGATE_LIMIT_RPS": "0.1", "OCIGATE_LIMIT_BURST": "2"}  # nothing refills meanwhile
    trusting = start_gateway({**env, "OCIGATE_TRUSTED_PROXIES": "127.0.0.1/32"})
    clients = [f"198.51.100.{n}" for n in range(1, 4)]
    for client in clients:  # each forwarded client has its own bucket
        codes = [
            requests.get(f"{trusting.url}/v2/", headers={"X-Forwarded-For": client}).status_code
            for _ in range(3)
        ]
        assert codes == [200, 200, 429]
    untrusting = start_gateway(env)
    peer = session_from("127.0.0.73")
    codes = [
        peer.get(f"{untrusting.url}/v2/", headers={"X-Forwarded-For": client}).status_code
        for client in clients
    ]
    assert codes == [200, 200, 429]  # spoofed headers from an untrusted peer change nothing


class _ProbeAnswer:
    status_code = 200


def _get_through_proxy_protocol(url: str, **kwargs: object) -> _ProbeAnswer:
    """Gateway.start's readiness probe, with the PROXY header a load balancer would send."""
    port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(proxy_v1("192.0.2.1") + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            if sock.recv(64).startswith(b"HTTP/1.1 200"):
                return _ProbeAnswer()
    except OSError:
        pass
    raise requests.ConnectionError(url)


def test_proxy_protocol_names_the_client_before_http(
    start_gateway: StartGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(requests, "get", _get_through_proxy_protocol)
    gateway = start_gateway(
        {
            "OCIGATE_PROXY_PROTOCOL": "on",
            "OCIGATE_TRUSTED_PROXIES": "127.0.0.1",
            "OCIGATE_LIMIT_CONNECTIONS": "2",
        }
    )
    held = hold_connections([gateway.port], 4)
    try:
        for sock, client in zip(
            held, ["198.51.100.1", "198.51.100.1", "198.51.100.1", "198.51.100.2"], strict=True
        ):
            sock.sendall(proxy_v1(client))
        answered = [served([sock], settle=0.1) for sock in held]
        assert answered == [1, 1, 0, 1]  # the third connection of .1 is over its limit
        bare = socket.create_connection(("127.0.0.1", gateway.port))
        bare.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert bare.recv(64) == b""  # no PROXY header: closed
        bare.close()
    finally:
        close_all(held)
    monkeypatch.undo()
    assert "ocigate_limiter_proxy_header_errors_total 1" in _metrics_through_proxy_protocol(gateway.port)


def _metrics_through_proxy_protocol(port: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(proxy_v1("192.0.2.1") + b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return b"".join(iter(lambda: sock.recv(65536), b"")).decode()


def test_150_connections_from_one_client_100_served(start_gateway: StartGateway) -> None:
    gateway = start_gateway({"OCIGATE_LIMIT_CONNECTIONS": "100"})
    held = hold_connections([gateway.port], 150)
    try:
        assert served(held) == 100
    finally:
        close_all(held)
    time.sleep(0.3)
    metrics = requests.get(f"{gateway.url}/metrics").text
    assert "ocigate_limiter_connections_refused_total 50" in metrics
    held = hold_connections([gateway.port], 100)  # the slots came back
    try:
        assert served(held) == 100
    finally:
        close_all(held)


def test_150_connections_across_two_replicas_sharing_redis(
    start_gateway: StartGateway, redis_url: str
) -> None:
    env = {"OCIGATE_LIMIT_CONNECTIONS": "100", "OCIGATE_REDIS_URL": redis_url}
    replicas = [start_gateway(env), start_gateway(env)]
    held = hold_connections([r.port for r in replicas], 150)
    try:
        assert served(held) == 100
    finally:
        close_all(held)


def test_a_killed_replica_gives_its_slots_back(start_gateway: StartGateway, redis_url: str) -> None:
    lease = 6.0  # long enough that the check right after the kill comes before any expiry
    env = {
        "OCIGATE_LIMIT_CONNECTIONS": "10",
        "OCIGATE_REDIS_URL": redis_url,
        "OCIGATE_LIMIT_LEASE_SECONDS": str(lease),
    }
    doomed, survivor = start_gateway(env), start_gateway(env)
    held = hold_connections([doomed.port], 10)
    assert served(held) == 10
    killed = time.monotonic()
    doomed.kill()
    close_all(held)
    late = hold_connections([survivor.port], 10)
    try:
        count = served(late, settle=0.2)
        if time.monotonic() - killed < lease / 3 * 2:  # the leases cannot have expired yet
            assert count == 0  # the dead replica's leases still count...
    finally:
        close_all(late)
    deadline = time.monotonic() + lease + 10
    while True:  # ...until they expire
        late = hold_connections([survivor.port], 10)
        try:
            if served(late, settle=0.2) == 10:
                break
        finally:
            close_all(late)
        assert time.monotonic() < deadline, "the dead replica's slots never came back"
        time.sleep(0.5)


def test_two_workers_share_limits_through_redis(start_gateway: StartGateway, redis_url: str) -> None:
    gateway = start_gateway(
        {
            "OCIGATE_WORKERS": "2",
            "OCIGATE_REDIS_URL": redis_url,
            "OCIGATE_LIMIT_CONNECTIONS": "100",
            "OCIGATE_LIMIT_RPS": "5",
            "OCIGATE_LIMIT_BURST": "10",
        }
    )
    started = time.monotonic()
    codes = [  # a new connection each (Connection: close), so the two workers share the work
        requests.get(f"{gateway.url}/v2/", headers={"Connection": "close"}).status_code for _ in range(40)
    ]
    window = time.monotonic() - started
    assert 10 <= codes.count(200) <= 10 + 5 * window + 1
    held = hold_connections([gateway.port], 150)
    try:
        assert served(held) == 100
    finally:
        close_all(held)


def test_two_workers_without_redis_each_enforce_half(start_gateway: StartGateway) -> None:
    gateway = start_gateway({"OCIGATE_WORKERS": "2", "OCIGATE_LIMIT_CONNECTIONS": "100"})
    held = hold_connections([gateway.port], 150)
    try:
        assert 50 <= served(held) <= 100  # never more than the promise; the kernel's spread decides
    finally:
        close_all(held)
