"""Two replicas under concurrent pushes and pulls while PostgreSQL, Redis and the S3 store
(radosgw) are stopped in turn, each an instance of this test's own, stopped by its PID (issue 16):
clients get 503 UNAVAILABLE with Retry-After or their answer, never a 500; every push that was
acknowledged is pulled back afterwards from both replicas with the right digests; the replicas
recover on their own, without a restart. Count-based: each phase lasts until enough requests
have seen it, within generous deadlines."""

from __future__ import annotations

import collections
import hashlib
import itertools
import json
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.registry_client import OCI_MANIFEST, RegistryClient, digest_of, image_manifest
from tests.services.ceph import RadosGateway, S3Service
from tests.services.postgres import PostgresServer
from tests.services.redis import RedisServer

from .conftest import Replicas, purge_bucket, start_replicas

WORKERS = 4
REPOSITORY = "faults/app"
LARGE_EVERY = 6  # every sixth image has a layer large enough for the S3 take-over read path
OK = {200, 201, 202, 204}


@dataclass(frozen=True)
class Pushed:
    tag: str
    manifest: bytes
    blobs: dict[str, bytes]  # digest -> content

    @property
    def digest(self) -> str:
        return digest_of(self.manifest)


@dataclass
class Observations:
    """What the clients saw, per phase; shared by the worker threads."""

    phase: str = "steady"
    statuses: collections.Counter[tuple[str, int]] = field(default_factory=collections.Counter)
    cut: collections.Counter[str] = field(default_factory=collections.Counter)  # blob GETs cut
    unexpected: list[str] = field(default_factory=list)
    pushed: list[Pushed] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def saw(self, what: str, response: requests.Response) -> bool:
        """Record a response; whether it was a success."""
        with self.lock:
            self.statuses[(self.phase, response.status_code)] += 1
            if response.status_code in OK:
                return True
            if response.status_code != 503 or "Retry-After" not in response.headers:
                self.unexpected.append(f"{self.phase}: {what}: {response.status_code} {response.text[:300]}")
        return False

    def count(self, phase: str, statuses: set[int] | None = None) -> int:
        with self.lock:
            return sum(
                n for (p, s), n in self.statuses.items() if p == phase and (statuses is None or s in statuses)
            )

    def pushed_in(self, phase: str) -> int:
        with self.lock:
            return sum(1 for p in self.pushed if p.tag.startswith(phase.replace(" ", "-")))


def push(client: RegistryClient, seen: Observations, large: bool) -> None:
    seed = os.urandom(8).hex()
    tag = f"{seen.phase.replace(' ', '-')}-{seed}"
    config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed}).encode()
    layer = os.urandom(9 * 1024 * 1024 if large else 200 * 1024)
    for content in (config, layer):
        if not seen.saw("blob push", client.post_blob(REPOSITORY, content)):
            return
    manifest = image_manifest(config, [layer])
    response = client.request(
        "PUT", f"/v2/{REPOSITORY}/manifests/{tag}", data=manifest, headers={"Content-Type": OCI_MANIFEST}
    )
    if seen.saw("manifest push", response):
        with seen.lock:
            seen.pushed.append(Pushed(tag, manifest, {digest_of(config): config, digest_of(layer): layer}))


def pull(client: RegistryClient, seen: Observations, image: Pushed) -> bool:
    """Pull `image` and check every digest; whether all of it came (other bytes, or a status
    but 503, are unexpected)."""
    for reference in (image.tag, image.digest):
        response = client.request(
            "GET", f"/v2/{REPOSITORY}/manifests/{reference}", headers={"Accept": OCI_MANIFEST}
        )
        if not seen.saw("manifest pull", response):
            return False
        if response.content != image.manifest:
            seen.unexpected.append(f"{image.tag}: manifest {reference} has other bytes")
            return False
    for digest, content in image.blobs.items():
        try:
            response = client.request("GET", f"/v2/{REPOSITORY}/blobs/{digest}")
        except requests.RequestException:  # cut mid-stream: the honest signal once a 200 is out
            with seen.lock:
                seen.cut[seen.phase] += 1
            return False
        if not seen.saw("blob pull", response):
            return False
        if (
            hashlib.sha256(response.content).hexdigest() != digest.split(":")[1]
            or response.content != content
        ):
            seen.unexpected.append(f"{image.tag}: blob {digest} has other bytes")
            return False
    return True


def pull_retrying(client: RegistryClient, seen: Observations, image: Pushed) -> bool:
    """`pull` as a client does it: again after a 503, for a minute at most."""
    for _ in range(120):
        if pull(client, seen, image):
            return True
        time.sleep(0.5)
    return False


def work(clients: list[RegistryClient], seen: Observations, stop: threading.Event, seed: int) -> None:
    rng = random.Random(seed)
    for n in itertools.count():
        if stop.is_set():
            return
        client = clients[n % len(clients)]
        try:
            push(client, seen, large=n % LARGE_EVERY == seed % LARGE_EVERY)
            with seen.lock:
                image = rng.choice(seen.pushed) if seen.pushed else None
            if image is not None:
                pull(clients[(n + 1) % len(clients)], seen, image)
        except requests.RequestException as exc:  # a push the client could not finish: not acknowledged
            with seen.lock:
                seen.statuses[(seen.phase, 0)] += 1
                if not isinstance(exc, requests.ConnectionError):
                    seen.unexpected.append(f"{seen.phase}: {exc!r}")


def wait_until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        time.sleep(0.2)


@dataclass
class Services:
    postgres: PostgresServer
    redis: RedisServer
    rgw: RadosGateway


@pytest.fixture
def faulty(ceph_s3: S3Service, tmp_path: Path) -> Iterator[tuple[Replicas, Services]]:
    """Replicas on a PostgreSQL, a Redis and a radosgw (of the session's Ceph) of their own."""
    postgres = PostgresServer()
    redis_server = RedisServer(tmp_path / "redis")
    rgw = RadosGateway(ceph_s3, tmp_path / "rgw")
    replicas: Replicas | None = None
    try:
        replicas = start_replicas(
            rgw.service, tmp_path / "replicas", postgres.create_database(), redis_server.url
        )
        yield replicas, Services(postgres, redis_server, rgw)
    finally:
        if replicas is not None:
            replicas.stop()
            purge_bucket(ceph_s3, replicas.bucket)
        rgw.stop()
        redis_server.stop()
        postgres.stop()


def test_stores_stopped_in_turn_under_load_give_503s_lose_nothing_and_recover(
    faulty: tuple[Replicas, Services],
) -> None:
    replicas, services = faulty
    pids = [gateway.process.pid for gateway in replicas.gateways if gateway.process is not None]
    clients = [replicas.client(gateway) for gateway in replicas.gateways]
    seen = Observations()
    stop = threading.Event()
    threads = [
        threading.Thread(target=work, args=([replicas.client(g) for g in replicas.gateways], seen, stop, n))
        for n in range(WORKERS)
    ]
    for thread in threads:
        thread.start()
    outages = [
        # name, stop, start, whether requests fail meanwhile (a cache does not fail them)
        ("postgres", services.postgres.halt, services.postgres.start, True),
        ("redis", services.redis.stop, services.redis.start, False),
        ("s3", services.rgw.stop, services.rgw.start, True),
    ]
    try:
        wait_until(lambda: len(seen.pushed) >= 2 * WORKERS, 120, "pushes before the first outage")
        for name, halt, start, fails in outages:
            seen.phase = f"{name} down"
            halt()
            # long enough that every worker met the outage a few times
            if fails:
                wait_until(
                    lambda: seen.count(seen.phase, {503}) >= 3 * WORKERS, 120, f"503s while {name} is down"
                )
            else:
                wait_until(
                    lambda: seen.count(seen.phase, OK) >= 20 * WORKERS, 120, f"answers while {name} is down"
                )
            start()
            seen.phase = f"{name} back"
            # recovery without a restart: pushes are acknowledged again, on both replicas
            wait_until(
                lambda: seen.pushed_in(seen.phase) >= 2 * WORKERS, 120, f"pushes after {name} came back"
            )
    finally:
        stop.set()
        for thread in threads:
            thread.join(120)

    assert seen.unexpected == [], "\n".join(seen.unexpected[:20])
    statuses = dict(seen.statuses)
    assert all(status in OK | {503} for _, status in statuses), statuses  # 0: a connection cut
    for name, _, _, fails in outages:
        if fails:
            assert seen.count(f"{name} down", {503}) > 0, statuses
    # the replicas never restarted
    assert [gateway.process.pid for gateway in replicas.gateways if gateway.process is not None] == pids
    assert all(
        gateway.process is not None and gateway.process.poll() is None for gateway in replicas.gateways
    )
    # every acknowledged push, whatever was down while it ran, from either replica
    # (a client retries a 503, as its Retry-After says: a replica may pause S3 requests for a
    # few seconds more, for a request of the outage that failed late)
    final = Observations(phase="final")
    for image in seen.pushed:
        for client in clients:
            assert pull_retrying(client, final, image), image.tag
    assert final.unexpected == [], "\n".join(final.unexpected[:20])
    assert final.cut == {}
    for gateway in replicas.gateways:
        log = gateway.log()
        assert "Traceback" not in log, log[-5000:]
        for store in ("metadata", "blobs", "cache"):  # once per outage, not per request
            assert log.count(f"{store} store unavailable") <= 3, log[-5000:]
