"""A rolling restart of two replicas (PostgreSQL + Ceph S3 + Redis) behind a load balancer that
follows `/readyz`, while 20 clients push and pull without pause: no request the replicas took
fails, each replica exits 0, and every push is pullable afterwards.

Half the clients keep connections alive, half close each (as containers/image does). A request
written to a kept-alive connection at the moment the server closed it idle never reached a
replica; HTTP clients retry exactly that case (RFC 9112 §9.3.1: no response byte, on a reused
connection), and so do these, counting it. Anything else is a failure: an error status, a cut
response, a refused or dropped new connection.
"""

from __future__ import annotations

import http.client
import random
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.harness.processes import wait_until
from tests.registry_client import OCI_MANIFEST, digest_of, image_manifest
from tests.servers import Gateway, basic_auth
from tests.services.ceph import S3Service
from tests.services.postgres import PostgresServer
from tests.services.redis import RedisServer

from .balancer import Backend, Balancer
from .conftest import REDIS_DB, Replicas, purge_bucket, start_replicas

CLIENTS = 20
SEED = 13
_CLOSED_IDLE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


@pytest.fixture
def replicas(
    ceph_s3: S3Service,
    postgres_server: PostgresServer,
    redis_server: RedisServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Replicas]:
    database = postgres_server.create_database()
    redis_url = redis_server.url.rpartition("/")[0] + f"/{REDIS_DB}"
    pair = start_replicas(
        ceph_s3,
        tmp_path_factory.mktemp("rolling"),
        database,
        redis_url,
        OCIGATE_DRAIN_DELAY="1",  # ten health checks of the balancer
        OCIGATE_DRAIN_TIMEOUT="30",
    )
    try:
        yield pair
    finally:
        pair.stop()
        postgres_server.drop_database(database)
        purge_bucket(ceph_s3, pair.bucket)


class Failure(Exception):
    pass


@dataclass
class Client:
    port: int
    keep_alive: bool
    connection: http.client.HTTPConnection | None = None
    served: int = 0  # responses on the current connection
    requests: int = 0
    idle_retries: int = 0

    def request(
        self, method: str, path: str, body: bytes = b"", **headers: str
    ) -> tuple[int, dict[str, str], bytes]:
        headers["Authorization"] = basic_auth()
        if not self.keep_alive:
            headers["Connection"] = "close"
        for attempt in (1, 2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                self.served = 0
            reused = self.served > 0
            try:
                self.connection.request(method, path, body=body or None, headers=headers)
                response = self.connection.getresponse()
            except _CLOSED_IDLE as exc:
                self.close()
                if reused and attempt == 1:
                    self.idle_retries += 1
                    continue
                raise Failure(f"{method} {path}: {exc!r} on a new connection") from None
            try:
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                raise Failure(f"{method} {path}: response cut: {exc!r}") from None
            self.requests += 1
            self.served += 1
            if response.will_close:
                self.close()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, data
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def expect(
        self, status: int, method: str, path: str, body: bytes = b"", **headers: str
    ) -> dict[str, str]:
        """The response's headers; `Failure` unless it has this status."""
        return self.fetch(status, method, path, body, **headers)[0]

    def fetch(
        self, status: int, method: str, path: str, body: bytes = b"", **headers: str
    ) -> tuple[dict[str, str], bytes]:
        got, answer_headers, data = self.request(method, path, body, **headers)
        if got != status:
            raise Failure(f"{method} {path}: {got} (expected {status}): {data[:300]!r}")
        return answer_headers, data


@dataclass
class Pushed:
    repository: str
    tag: str
    manifest_digest: str
    layer_digest: str


@dataclass
class Workload:
    port: int
    stop: threading.Event = field(default_factory=threading.Event)
    pushed: list[Pushed] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    clients: list[Client] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, number: int) -> None:
        client = Client(self.port, keep_alive=number % 2 == 0)
        self.clients.append(client)
        rng = random.Random(SEED * 1000 + number)
        iteration = 0
        while not self.stop.is_set():
            try:
                self.push(client, number, iteration, rng)
                self._pull(client, rng)
            except Failure as failure:
                with self.lock:
                    self.failures.append(str(failure))
            iteration += 1
        client.close()

    def push(self, client: Client, number: int, iteration: int, rng: random.Random) -> None:
        repository = f"rolling/c{number}"
        layer = rng.randbytes(rng.randrange(64 << 10, 512 << 10))
        config = f'{{"client": {number}, "iteration": {iteration}}}'.encode()
        # the layer in a chunked upload (POST, PATCH, PUT): its steps may land on either replica
        started = client.expect(202, "POST", f"/v2/{repository}/blobs/uploads/")
        location = _path(started["location"])
        patched = client.expect(202, "PATCH", location, layer, **{"Content-Type": "application/octet-stream"})
        separator = "&" if "?" in _path(patched["location"]) else "?"
        client.expect(201, "PUT", f"{_path(patched['location'])}{separator}digest={digest_of(layer)}")
        client.expect(201, "POST", f"/v2/{repository}/blobs/uploads/?digest={digest_of(config)}", config)
        manifest = image_manifest(config, [layer])
        tag = f"i{iteration}"
        client.expect(
            201, "PUT", f"/v2/{repository}/manifests/{tag}", manifest, **{"Content-Type": OCI_MANIFEST}
        )
        with self.lock:
            self.pushed.append(Pushed(repository, tag, digest_of(manifest), digest_of(layer)))

    def _pull(self, client: Client, rng: random.Random) -> None:
        with self.lock:
            image = rng.choice(self.pushed)
        _, manifest = client.fetch(
            200, "GET", f"/v2/{image.repository}/manifests/{image.tag}", Accept=OCI_MANIFEST
        )
        if digest_of(manifest) != image.manifest_digest:
            raise Failure(f"{image.repository}:{image.tag}: another manifest")
        _, blob = client.fetch(200, "GET", f"/v2/{image.repository}/blobs/{image.layer_digest}")
        if digest_of(blob) != image.layer_digest:
            raise Failure(f"{image.layer_digest}: other bytes")


def _path(location: str) -> str:
    return "/" + location.split("/", 3)[3] if location.startswith("http") else location


def roll(gateway: Gateway, backend: Backend) -> int:
    """SIGTERM, wait for the exit, start again on the same port; its exit status."""
    assert gateway.process is not None
    gateway.process.send_signal(signal.SIGTERM)
    status = gateway.process.wait(60)
    gateway.start()
    wait_until(lambda: backend.ready, 30, "the balancer seeing the restarted replica")
    return status


def test_a_rolling_restart_under_load_fails_no_request(replicas: Replicas) -> None:
    backends = [Backend(gateway.port) for gateway in replicas.gateways]
    balancer = Balancer(backends).start()
    workload = Workload(balancer.port)
    threads = [threading.Thread(target=workload.run, args=(n,), daemon=True) for n in range(CLIENTS)]
    try:
        wait_until(lambda: all(b.ready for b in backends), 30, "both replicas ready at the balancer")
        setup = Client(balancer.port, keep_alive=False)
        for number in range(CLIENTS):  # something to pull from the start
            workload.push(setup, number, -1, random.Random(number))
        for thread in threads:
            thread.start()
        time.sleep(2)
        before = sum(client.requests for client in workload.clients)
        statuses = [
            roll(gateway, backend) for gateway, backend in zip(replicas.gateways, backends, strict=True)
        ]
        time.sleep(2)
    finally:
        workload.stop.set()
        for thread in threads:
            thread.join(60)
        balancer.stop()

    total = sum(client.requests for client in workload.clients)
    retries = sum(client.idle_retries for client in workload.clients)
    print(f"{total} requests ({total - before} from the first roll on), {retries} retried (closed idle)")
    assert workload.failures == []
    assert balancer.connect_failures == 0
    assert balancer.no_backend == 0
    assert statuses == [0, 0]
    for gateway in replicas.gateways:
        assert "drained in" in gateway.log()
    assert total > 200  # the clients really ran through both restarts

    checker = Client(replicas.a.port, keep_alive=True)
    try:
        for image in workload.pushed:
            _, manifest = checker.fetch(
                200, "GET", f"/v2/{image.repository}/manifests/{image.tag}", Accept=OCI_MANIFEST
            )
            assert digest_of(manifest) == image.manifest_digest
            _, blob = checker.fetch(200, "GET", f"/v2/{image.repository}/blobs/{image.layer_digest}")
            assert digest_of(blob) == image.layer_digest
    finally:
        checker.close()
