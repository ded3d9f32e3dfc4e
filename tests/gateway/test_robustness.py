"""Garbage, attacks and broken requests over raw sockets: always a clean 4xx, nothing stored."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from tests.registry_client import OCI_MANIFEST, RegistryClient, digest_of
from tests.servers import Gateway, basic_auth

AUTH = basic_auth()


def request_head(method: str, path: str, *headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: x", f"Authorization: {AUTH}", *headers, "", ""]
    return "\r\n".join(lines).encode()


# The first bytes skopeo, podman and docker send to a plain-HTTP port (a TLS 1.2/1.3 hello).
TLS_CLIENT_HELLO = bytes.fromhex(
    "16030100c4010000c00303" + "ab" * 32 + "20" + "cd" * 32 + "0026c02bc02fc02cc030cca9cca8c009c013c00ac014"
    "009c009d002f0035c012000a130113021303010000510000000e000c0000096c6f63616c686f7374000500050100000000"
)


def raw_request(gateway: Gateway, payload: bytes, *, read: bool = True) -> bytes:
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(payload)
        if not read:
            return b""
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def test_tls_client_hello_is_refused_and_server_keeps_serving(
    gateway: Gateway, client: RegistryClient
) -> None:
    for _ in range(20):
        response = raw_request(gateway, TLS_CLIENT_HELLO)
        assert response == b"" or status_of(response) == 400
    assert client.request("GET", "/v2/").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/v2/a/../b/tags/list",
        "/v2/a/%2e%2e/b/tags/list",
        "/v2/%2e%2e/%2e%2e/etc/passwd/blobs/uploads/",
        "/v2/a/%2E%2E/manifests/latest",
        "/v2/UPPER/tags/list",
        "/v2/a/./b/manifests/x",
    ],
)
def test_path_traversal_is_name_invalid(gateway: Gateway, path: str) -> None:
    response = raw_request(
        gateway,
        f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {AUTH}\r\nConnection: close\r\n\r\n".encode(),
    )
    assert status_of(response) == 400
    body = json.loads(response.split(b"\r\n\r\n", 1)[1])
    assert body["errors"][0]["code"] == "NAME_INVALID"


@pytest.mark.parametrize(
    ("method", "path", "code"),
    [
        ("GET", "/v2/a/blobs/sha256:xyz", "DIGEST_INVALID"),
        ("GET", "/v2/a/blobs/md5:" + "0" * 32, "DIGEST_INVALID"),
        ("GET", "/v2/a/blobs/sha256:" + "G" * 64, "DIGEST_INVALID"),
        ("GET", "/v2/a/manifests/sha256:short", "DIGEST_INVALID"),
        ("GET", "/v2/a/manifests/-bad-tag", "MANIFEST_UNKNOWN"),
        ("PUT", "/v2/a/manifests/-bad-tag", "MANIFEST_INVALID"),
        ("GET", "/v2/a/referrers/not-a-digest", "DIGEST_INVALID"),
        ("PUT", "/v2/a/blobs/uploads/not-an-id?digest=sha256:" + "0" * 64, "BLOB_UPLOAD_UNKNOWN"),
        ("GET", "/v2/a/tags/list?n=-1", "PAGINATION_NUMBER_INVALID"),
        ("GET", "/v2/_catalog?n=abc", "PAGINATION_NUMBER_INVALID"),
        ("POST", "/v2/a/blobs/uploads/?mount=sha256:zz&from=b", "DIGEST_INVALID"),
        ("PATCH", "/v2/a/manifests/latest", "UNSUPPORTED"),
    ],
)
def test_malformed_requests_are_4xx(client: RegistryClient, method: str, path: str, code: str) -> None:
    response = client.request(method, path)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["errors"][0]["code"] == code


def test_malformed_ranges(client: RegistryClient, repository: str) -> None:
    digest = client.push_blob(repository, b"0123456789")
    for header in ("bytes=20-30", "bytes=abc", "items=0-1", "bytes=5-2", "bytes=-0"):
        response = client.request("GET", f"/v2/{repository}/blobs/{digest}", headers={"Range": header})
        assert response.status_code == 416, header
        assert response.headers["Content-Range"] == "bytes */10"
    upload = client.start_upload(repository)
    response = client.request("PATCH", upload, data=b"abc", headers={"Content-Range": "bytes=x-y"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "BLOB_UPLOAD_INVALID"


def test_truncated_upload_body_stores_nothing(
    gateway: Gateway, client: RegistryClient, repository: str
) -> None:
    content = os.urandom(256 * 1024)
    upload = client.start_upload(repository)
    head = request_head(
        "PATCH", upload, "Content-Type: application/octet-stream", f"Content-Length: {len(content)}"
    )
    raw_request(gateway, head + content[: len(content) // 2], read=False)  # then the client dies
    status = client.request("GET", upload)
    assert status.status_code == 204
    assert status.headers["Range"] == "0-0"  # the broken request left no trace
    # the upload goes on from where it really stood
    response = client.request(
        "PATCH", upload, data=content, headers={"Content-Range": f"0-{len(content) - 1}"}
    )
    assert response.status_code == 202
    done = client.request("PUT", client.location(response), params={"digest": digest_of(content)})
    assert done.status_code == 201
    assert client.request("GET", f"/v2/{repository}/blobs/{digest_of(content)}").content == content


def test_truncated_monolithic_upload_leaves_no_blob(
    gateway: Gateway, client: RegistryClient, repository: str
) -> None:
    content = os.urandom(100_000)
    digest = digest_of(content)
    head = request_head(
        "POST", f"/v2/{repository}/blobs/uploads/?digest={digest}", f"Content-Length: {len(content)}"
    )
    raw_request(gateway, head + content[:50_000], read=False)
    assert client.request("HEAD", f"/v2/{repository}/blobs/{digest}").status_code == 404


def test_broken_chunked_encoding_is_rejected(
    gateway: Gateway, client: RegistryClient, repository: str
) -> None:
    upload = client.start_upload(repository)
    payload = request_head("PATCH", upload, "Transfer-Encoding: chunked", "Connection: close") + (
        b"5\r\nhello\r\nZZ\r\nbroken\r\n0\r\n\r\n"
    )
    response = raw_request(gateway, payload)
    assert response == b"" or 400 <= status_of(response) < 500
    assert client.request("GET", upload).headers["Range"] == "0-0"


def test_oversized_manifest_is_413(client: RegistryClient, repository: str) -> None:
    big = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "annotations": {"x": "y" * (4 << 20)}})
    response = client.request(
        "PUT", f"/v2/{repository}/manifests/big", data=big.encode(), headers={"Content-Type": OCI_MANIFEST}
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["code"] == "MANIFEST_INVALID"
    assert client.request("GET", f"/v2/{repository}/manifests/big").status_code == 404


def test_oversized_chunked_manifest_is_413(client: RegistryClient, repository: str) -> None:
    def body():  # no Content-Length: the limit must hold while reading
        for _ in range(5):
            yield b" " * (1 << 20)

    response = client.request(
        "PUT", f"/v2/{repository}/manifests/big", data=body(), headers={"Content-Type": OCI_MANIFEST}
    )
    assert response.status_code == 413


def test_huge_header_is_refused(gateway: Gateway) -> None:
    payload = request_head("GET", "/v2/", f"X-Big: {'a' * 100_000}", "Connection: close")
    response = raw_request(gateway, payload)
    assert response == b"" or status_of(response) in (400, 431)


def test_empty_bodies_one_after_another_are_read_as_empty(client: RegistryClient, repository: str) -> None:
    """aiohttp shares one reader between all empty bodies, and it never ends once read: a second
    empty upload used to spin the event loop forever."""
    for _ in range(3):
        response = client.request(
            "POST",
            f"/v2/{repository}/blobs/uploads/",
            params={"digest": digest_of(b"")},
            data=b"",
            timeout=10,
        )
        assert response.status_code == 201, response.text
        response = client.request(
            "PUT",
            f"/v2/{repository}/manifests/empty",
            data=b"",
            headers={"Content-Type": OCI_MANIFEST},
            timeout=10,
        )
        assert response.status_code == 400, response.text


@pytest.mark.parametrize(
    "payload",
    [
        b"GET /v2/ HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"GET /v2/ HTTP/1.1\r\nHost: x\r\nBad Header Name: y\r\n\r\n",
        b"GET /v2/ HTTP/9.9\r\nHost: x\r\n\r\n",
        b"GET /v2/\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
    ],
)
def test_malformed_http_is_an_oci_400_and_one_warning_line(tmp_path: Path, payload: bytes) -> None:
    gateway = Gateway(tmp_path / "data").start()
    try:
        response = raw_request(gateway, payload)
        assert status_of(response) == 400, response
        head, _, body = response.partition(b"\r\n\r\n")
        assert b"application/json" in head
        assert json.loads(body)["errors"][0]["code"] == "UNSUPPORTED"
        assert RegistryClient(gateway.url).request("GET", "/v2/").status_code == 200
    finally:
        gateway.stop()
    log = gateway.log()
    assert "Traceback" not in log, log
    assert log.count("malformed HTTP request") == 1, log
    assert "ERROR" not in log, log
