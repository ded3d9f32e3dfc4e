"""Concurrent pushes and crashes: one copy of everything, tags never corrupt, nothing half-visible."""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.registry_client import (
    OCI_MANIFEST,
    RegistryClient,
    digest_of,
    image_manifest,
)
from tests.servers import Gateway, basic_auth


def blob_files(data_dir: Path) -> list[Path]:
    return [p for p in (data_dir / "blobs").rglob("*") if p.is_file()]


def test_same_blob_pushed_concurrently_is_stored_once(
    gateway: Gateway, client: RegistryClient, repository: str
) -> None:
    content = os.urandom(3 * 1024 * 1024)
    digest = digest_of(content)

    def push(i: int) -> int:
        pusher = RegistryClient(gateway.url)
        upload = pusher.start_upload(f"{repository}-{i % 2}")
        response = pusher.request("PUT", upload, params={"digest": digest}, data=content)
        return response.status_code

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(push, range(8))) == [201] * 8
    stored = [p for p in blob_files(gateway.data_dir) if p.name.startswith(digest.split(":")[1])]
    assert len(stored) == 1
    assert content[:4096] not in stored[0].read_bytes()  # encrypted at rest
    for name in (f"{repository}-0", f"{repository}-1"):
        assert client.request("GET", f"/v2/{name}/blobs/{digest}").content == content


def test_same_manifest_pushed_concurrently(gateway: Gateway, client: RegistryClient, repository: str) -> None:
    image = client.push_image(repository, "base")

    def push(_: int) -> int:
        return RegistryClient(gateway.url).push_manifest(repository, "same", image.manifest).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(push, range(16))) == {201}
    assert client.request("GET", f"/v2/{repository}/manifests/same").content == image.manifest


def test_concurrent_tag_puts_leave_one_written_digest(
    gateway: Gateway, client: RegistryClient, repository: str
) -> None:
    config = b'{"architecture":"amd64","os":"linux"}'
    client.push_blob(repository, config)
    manifests = [image_manifest(config, annotations={"n": str(i)}) for i in range(12)]

    def push(manifest: bytes) -> int:
        return RegistryClient(gateway.url).push_manifest(repository, "race", manifest).status_code

    with ThreadPoolExecutor(12) as pool:
        assert set(pool.map(push, manifests)) == {201}
    time.sleep(1.1)  # past the tag cache's lifetime: read what the store holds
    final = client.request("GET", f"/v2/{repository}/manifests/race")
    assert final.status_code == 200
    assert final.content in manifests
    assert final.headers["Docker-Content-Digest"] == digest_of(final.content)


def test_kill_during_upload_leaves_no_blob_and_consistent_metadata(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = Gateway(data_dir).start()
    content = os.urandom(8 * 1024 * 1024)
    digest = digest_of(content)
    try:
        client = RegistryClient(server.url)
        first = client.request("PATCH", client.start_upload("crash/test"), data=content[: 1 << 20])
        upload = client.location(first)
        # a second PATCH is half sent when the server dies
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            rest = len(content) - (1 << 20)
            head = f"PATCH {upload} HTTP/1.1\r\nHost: x\r\nAuthorization: {basic_auth()}\r\n"
            head += f"Content-Length: {rest}\r\n\r\n"
            sock.sendall(head.encode() + content[1 << 20 : 4 << 20])
            time.sleep(0.3)
            server.kill()
        with sqlite3.connect(data_dir / "metadata.db") as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            assert db.execute("SELECT count(*) FROM blobs").fetchone() == (0,)
            assert db.execute("SELECT byte_offset FROM uploads").fetchall() == [(1 << 20,)]
        assert blob_files(data_dir) == []

        server.start()  # the upload goes on after the restart, from what was committed
        client = RegistryClient(server.url)
        assert client.request("HEAD", f"/v2/crash/test/blobs/{digest}").status_code == 404
        status = client.request("GET", upload)
        assert (status.status_code, status.headers["Range"]) == (204, f"0-{(1 << 20) - 1}")
        done = client.request("PUT", upload, params={"digest": digest}, data=content[1 << 20 :])
        assert done.status_code == 201, done.text
        assert client.request("GET", f"/v2/crash/test/blobs/{digest}").content == content
    finally:
        server.stop()


def test_manifest_naming_a_deleted_blob_is_refused(client: RegistryClient, repository: str) -> None:
    """A manifest is accepted only if its blobs are linked when it is checked."""
    layer = os.urandom(1000)
    config = b"{}"
    layer_digest = client.push_blob(repository, layer)
    client.push_blob(repository, config)
    assert client.request("DELETE", f"/v2/{repository}/blobs/{layer_digest}").status_code == 202
    manifest = image_manifest(config, [layer])
    response = client.request(
        "PUT", f"/v2/{repository}/manifests/v1", data=manifest, headers={"Content-Type": OCI_MANIFEST}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"
    assert response.json()["errors"][0]["detail"] == [layer_digest]


def read_response_slowly(sock: socket.socket) -> tuple[bytes, bytes]:
    """Head and body of one response, received 16 KiB at a time with pauses: the server's
    socket stays full and its unsent bytes wait in the process."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(16384)
    head, _, body = received.partition(b"\r\n\r\n")
    fields = dict(line.lower().split(b": ", 1) for line in head.split(b"\r\n")[1:])
    missing = int(fields[b"content-length"]) - len(body)
    parts = [body]
    while missing > 0 and (part := sock.recv(min(16384, missing))):
        parts.append(part)
        missing -= len(part)
        time.sleep(0.0005)
    return head, b"".join(parts)


@pytest.mark.parametrize("cpus", ["one", "all"])
def test_slow_and_fast_readers_of_one_large_blob_all_get_its_bytes(tmp_path: Path, cpus: str) -> None:
    """Reads decrypt into buffers reused once nothing refers to them: a reader whose bytes wait
    in the server must get exactly what readers at full speed get meanwhile (one CPU: batches
    decrypted on the event loop; more: in the thread pool)."""
    gateway = Gateway(tmp_path / "data").start()
    try:
        assert gateway.process is not None
        if cpus == "one":
            os.sched_setaffinity(gateway.process.pid, {min(os.sched_getaffinity(0))})
        content = os.urandom(24 << 20)
        digest = RegistryClient(gateway.url).push_blob("slow/reader", content)
        path = f"/v2/slow/reader/blobs/{digest}"
        with socket.socket() as slow:
            slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
            slow.settimeout(60)
            slow.connect(("127.0.0.1", gateway.port))
            slow.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {basic_auth()}\r\n\r\n".encode())
            with ThreadPoolExecutor(3) as pool:
                fast = [
                    pool.submit(lambda: RegistryClient(gateway.url).request("GET", path)) for _ in range(6)
                ]
                head, body = read_response_slowly(slow)
                assert [future.result().content == content for future in fast] == [True] * 6
        assert head.startswith(b"HTTP/1.1 200")
        assert digest_of(body) == digest
    finally:
        gateway.stop()
