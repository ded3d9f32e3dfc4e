"""Pull storms through a gateway on S3 (Ceph RGW, SSE-KMS) over real sockets: one read from the
store per storm of cold GETs, none once the edge cache holds the blob, a slow client holding
back nobody, a crash mid-fill, deletion, and workers sharing the cache. Counts: the gateway's
own `/metrics` (bytes received from the store) and every body checked."""

from __future__ import annotations

import asyncio
import concurrent.futures
import random
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from loadtests.s3_reads import REPOSITORY, Blob, Tally, client_session, get_checked, push
from ocigate.storage.config import MIB
from tests.servers import ADMIN_PASSWORD, ADMIN_USER, Gateway, basic_auth
from tests.services.ceph import S3Service, new_bucket
from tests.stalling_proxy import ThreadedProxy

SIZE = 40 * MIB + 4321


@pytest.fixture
def s3_env(ceph_s3: S3Service) -> dict[str, str]:
    return ceph_s3.settings("aws:kms", new_bucket(), OCIGATE_S3_PART_SIZE=str(8 * MIB))


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[Gateway]]:
    gateways: list[Gateway] = []
    yield gateways
    for gateway in gateways:
        gateway.stop()


def start(started: list[Gateway], data_dir: Path, env: dict[str, str]) -> Gateway:
    gateway = Gateway(data_dir, env=env)
    started.append(gateway)
    return gateway.start()


def metrics(gateway: Gateway) -> dict[str, float]:
    """The figures /metrics exports (with workers, summed over them by prometheus_client)."""
    text = requests.get(f"{gateway.url}/metrics", timeout=30, headers={"Connection": "close"}).text
    figures = {}
    for line in text.splitlines():
        match = re.fullmatch(r"(ocigate_[a-z_]+) ([0-9.e+]+)", line)
        if match:
            figures[match.group(1)] = float(match.group(2))
    return figures


def storm(urls: list[str], blob: Blob, clients: int) -> Tally:
    """`clients` GETs of `blob` at once, every body checked."""

    async def run() -> Tally:
        tally = Tally(gets=clients)
        async with client_session(basic_auth()) as session:
            await asyncio.gather(
                *(get_checked(session, urls[n % len(urls)], blob, tally) for n in range(clients))
            )
        return tally

    return asyncio.run(run())


def pushed(gateway: Gateway, size: int = SIZE, seed: int = 17) -> Blob:
    blob = Blob.make(size, random.Random(seed))

    async def run() -> None:
        async with client_session(basic_auth()) as session:
            await push(session, gateway.url, blob)

    asyncio.run(run())
    return blob


def settled(gateway: Gateway, fills: int = 1) -> dict[str, float]:
    """Figures once no read of the store is in flight and `fills` blobs were cached."""
    for _ in range(300):
        figures = metrics(gateway)
        if (
            figures["ocigate_blob_reads_in_flight"] == 0
            and figures.get("ocigate_edge_cache_fills_total", 0) >= fills
        ):
            return figures
        time.sleep(0.1)
    raise AssertionError(f"no settled state: {figures}")


# Without the cache, a reader that falls half a window (8 MiB) behind while others wait reads on
# its own (as it should: test_a_slow_client_holds_back_nobody); on a loaded machine some of the
# test's own 32 clients may, so there the blob is smaller than half a window. With the cache,
# such readers follow the cache file being filled: the store still sends the blob once.
SMALL = 7 * MIB + 4321


@pytest.mark.parametrize(("cache", "size"), [(True, SIZE), (False, SMALL)], ids=["edge-cache", "no-cache"])
def test_a_storm_reads_the_store_once(
    started: list[Gateway],
    ceph_s3: S3Service,
    s3_env: dict[str, str],
    tmp_path: Path,
    cache: bool,
    size: int,
) -> None:
    """32 GETs of a cold blob, held at the store until all have reached the gateway (the proxy
    between the gateway and S3 holds its answers): the store sends the blob once, counted by
    the proxy and by the gateway. The same storm warm: nothing more from the store with the
    edge cache, one read again without it (lingering off: how soon the second storm comes
    would decide whether the first's memory serves it; test_blob_reads.py tests lingering)."""
    rgw_port = int(ceph_s3.endpoint_url.rsplit(":", 1)[1])
    with ThreadedProxy("127.0.0.1", rgw_port) as threaded:
        proxy = threaded.proxy
        env = {
            **s3_env,
            "OCIGATE_S3_ENDPOINT_URL": proxy.url,
            "OCIGATE_S3_TIMEOUT": "120",
            "OCIGATE_CACHE_LINGER_BYTES": "0",
        }
        if cache:
            env["OCIGATE_CACHE_DIR"] = str(tmp_path / "cache")
        gateway = start(started, tmp_path / "data", env)
        blob = pushed(gateway, size)
        for storm_number in (1, 2):
            threaded.call(proxy.stall)
            before = threaded.call(lambda: proxy.received)
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                running = pool.submit(storm, [gateway.url], blob, 32)
                joined = 31 * storm_number
                if storm_number == 2 and cache:
                    joined = 31  # the warm storm is served from the cache: no flight to join
                wait_for(gateway, "ocigate_blob_reads_joined_total", joined)
                threaded.call(proxy.release)
                tally = running.result(300)
            assert tally.exact == 32, tally.summary()
            figures = settled(gateway, fills=1 if cache else 0)
            received = threaded.call(lambda: proxy.received) - before
            if storm_number == 2 and cache:
                assert figures["ocigate_store_read_bytes_total"] == blob.size  # none more
                assert figures["ocigate_edge_cache_hits_total"] == 32
                assert received < 4096  # nothing but the answers to the startup's probes, if any
            else:
                assert figures["ocigate_store_read_bytes_total"] == storm_number * blob.size
                assert figures["ocigate_store_reads_total"] == storm_number
                assert blob.size < received < blob.size + 64 * 1024  # the body once, and headers


def wait_for(gateway: Gateway, name: str, value: float) -> None:
    for _ in range(600):
        if metrics(gateway).get(name, 0) >= value:
            return
        time.sleep(0.05)
    raise AssertionError(f"{name} did not reach {value}: {metrics(gateway)}")


def test_a_slow_client_holds_back_nobody(
    started: list[Gateway], s3_env: dict[str, str], tmp_path: Path
) -> None:
    """A client that stops reading after the headers: eight others get every byte meanwhile
    (the gateway holds 16 MiB of a 40 MiB blob in memory); then it reads on and gets its bytes
    too, from the edge cache's file being filled, with no second read of the store."""
    gateway = start(started, tmp_path / "data", {**s3_env, "OCIGATE_CACHE_DIR": str(tmp_path / "cache")})
    blob = pushed(gateway)
    slow = socket.create_connection(("127.0.0.1", gateway.port))
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    with slow:
        slow.sendall(
            f"GET /v2/{REPOSITORY}/blobs/{blob.digest} HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: {basic_auth()}\r\n\r\n".encode()
        )
        head = slow.recv(4096)  # the headers, then nothing more is read for a while
        assert head.startswith(b"HTTP/1.1 200"), head
        fast = storm([gateway.url], blob, 8)
        assert fast.exact == 8, fast.summary()
        received = head.partition(b"\r\n\r\n")[2]
        body = bytearray(received)
        slow.settimeout(120)
        while len(body) < blob.size:
            piece = slow.recv(MIB)
            assert piece, f"the slow client's body ended after {len(body)} bytes"
            body += piece
    assert bytes(body) == blob.content
    figures = settled(gateway)
    assert figures["ocigate_store_read_bytes_total"] == blob.size
    assert figures["ocigate_blob_reads_spooled_total"] >= 1


def test_a_crash_mid_fill_leaves_nothing_that_is_served(
    started: list[Gateway], s3_env: dict[str, str], tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    env = {**s3_env, "OCIGATE_CACHE_DIR": str(cache)}
    gateway = start(started, tmp_path / "data", env)
    blob = pushed(gateway)
    with socket.create_connection(("127.0.0.1", gateway.port)) as slow:
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        slow.sendall(
            f"GET /v2/{REPOSITORY}/blobs/{blob.digest} HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: {basic_auth()}\r\n\r\n".encode()
        )
        assert slow.recv(4096).startswith(b"HTTP/1.1 200")
        for _ in range(300):  # the fill has written part of the blob: the window is full
            staged = list((cache / "uploads").iterdir())
            if staged and staged[0].stat().st_size > 8 * MIB:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("no fill in progress")
        gateway.kill()
    assert [path for path in (cache / "blobs").rglob("*") if path.is_file()] == []
    restarted = start(started, tmp_path / "data", env)
    assert list((cache / "uploads").iterdir()) == []  # swept at start
    tally = storm([restarted.url], blob, 1)
    assert tally.exact == 1, tally.summary()
    figures = settled(restarted)
    assert figures["ocigate_edge_cache_misses_total"] == 1  # the partial file was no entry
    assert figures["ocigate_store_read_bytes_total"] == blob.size
    assert len([path for path in (cache / "blobs").rglob("*") if path.is_file()]) == 1


def test_a_deleted_blob_is_unreachable_at_once_on_every_replica(
    started: list[Gateway], s3_env: dict[str, str], tmp_path: Path
) -> None:
    """Two replicas on one metadata store, each with its own edge cache holding the blob."""
    first = start(started, tmp_path / "data", {**s3_env, "OCIGATE_CACHE_DIR": str(tmp_path / "cache1")})
    second = start(started, tmp_path / "data", {**s3_env, "OCIGATE_CACHE_DIR": str(tmp_path / "cache2")})
    blob = pushed(first)
    session = requests.Session()
    session.auth = (ADMIN_USER, ADMIN_PASSWORD)
    mount = session.post(
        f"{first.url}/v2/other/repo/blobs/uploads/",
        params={"mount": blob.digest, "from": REPOSITORY},
        timeout=30,
    )
    assert mount.status_code == 201
    for gateway in (first, second):
        assert storm([gateway.url], blob, 2).exact == 2
        settled(gateway)
    deleted = session.delete(f"{first.url}/v2/{REPOSITORY}/blobs/{blob.digest}", timeout=30)
    assert deleted.status_code == 202
    for gateway in (first, second):
        response = session.get(f"{gateway.url}/v2/{REPOSITORY}/blobs/{blob.digest}", timeout=30)
        assert response.status_code == 404
        assert response.json()["errors"][0]["code"] == "BLOB_UNKNOWN"
        other = session.get(f"{gateway.url}/v2/other/repo/blobs/{blob.digest}", timeout=60)
        assert other.status_code == 200
        assert other.content == blob.content  # still linked there: from the cache
        figures = metrics(gateway)
        assert figures["ocigate_edge_cache_hits_total"] == 1
        assert figures["ocigate_store_read_bytes_total"] == blob.size


def test_workers_share_the_cache(started: list[Gateway], s3_env: dict[str, str], tmp_path: Path) -> None:
    env = {**s3_env, "OCIGATE_CACHE_DIR": str(tmp_path / "cache"), "OCIGATE_WORKERS": "2"}
    gateway = start(started, tmp_path / "data", env)
    blob = pushed(gateway)
    first = storm([gateway.url], blob, 1)
    assert first.exact == 1
    settled(gateway)
    tally = storm([gateway.url], blob, 16)  # 16 connections: both workers serve some
    assert tally.exact == 16, tally.summary()
    # each worker hands its counts to the shared metrics files once a second
    wait_for(gateway, "ocigate_edge_cache_hits_total", 16)
    figures = settled(gateway)
    assert figures["ocigate_store_read_bytes_total"] == blob.size
    assert figures["ocigate_edge_cache_hits_total"] == 16
