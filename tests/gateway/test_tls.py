"""HTTPS on the gateway (OCIGATE_TLS_CERT / OCIGATE_TLS_KEY) with a private CA made here: what is
offered, certificate reloads that keep open connections, PROXY protocol before the handshake,
and start-up errors for files that cannot be served."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cryptography import x509

from tests.gateway.raw_http import read_response_head
from tests.harness.processes import wait_until
from tests.harness.tls import PrivateCA, ServerFiles
from tests.servers import ADMIN_PASSWORD, ADMIN_USER, Gateway, basic_auth

NAMES = ["localhost", "127.0.0.1"]
# the server ends the handshake: with an alert, or (uvloop) by closing; not the client giving up
SERVER_REFUSED = {
    "TLSV1_ALERT_PROTOCOL_VERSION",
    "SSLV3_ALERT_HANDSHAKE_FAILURE",
    "UNEXPECTED_EOF_WHILE_READING",
}


@pytest.fixture
def ca(tmp_path: Path) -> PrivateCA:
    return PrivateCA(tmp_path / "ca")


@pytest.fixture
def certificate(ca: PrivateCA, tmp_path: Path) -> ServerFiles:
    (tmp_path / "tls").mkdir()
    return ca.issue(NAMES, serial=1001, into=tmp_path / "tls")


def tls_gateway(tmp_path: Path, files: ServerFiles, **env: str) -> Gateway:
    gateway = Gateway(
        tmp_path / "data",
        env={"OCIGATE_TLS_CERT": str(files.cert), "OCIGATE_TLS_KEY": str(files.key), **env},
    )
    return gateway.start(ready=lambda g: g.serving())


@pytest.fixture
def gateway(tmp_path: Path, certificate: ServerFiles) -> Iterator[Gateway]:
    server = tls_gateway(tmp_path, certificate)
    yield server
    server.stop()


def client_context(ca: PrivateCA) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca.ca_file)


def connect(port: int, context: ssl.SSLContext) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        return context.wrap_socket(raw, server_hostname="localhost")
    except BaseException:
        raw.close()
        raise


def serial_of(tls: ssl.SSLSocket | ssl.SSLObject) -> int:
    der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def new_connections_get(serial: int, port: int, ca: PrivateCA, count: int = 1) -> bool:
    for _ in range(count):
        with connect(port, client_context(ca)) as tls:
            if serial_of(tls) != serial:
                return False
    return True


def test_https_with_the_chain_alpn_and_tls12_or_later_only(gateway: Gateway, ca: PrivateCA) -> None:
    # clients trust the root only: the served chain must carry the intermediate
    response = requests.get(f"https://localhost:{gateway.port}/v2/", verify=ca.ca_file, timeout=30)
    assert response.status_code == 401
    assert requests.get(f"https://localhost:{gateway.port}/readyz", verify=ca.ca_file, timeout=30).ok

    context = client_context(ca)
    context.set_alpn_protocols(["h2", "http/1.1"])
    with connect(gateway.port, context) as tls:
        assert tls.selected_alpn_protocol() == "http/1.1"
        assert tls.version() in ("TLSv1.2", "TLSv1.3")

    old = client_context(ca)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer TLS 1.1 at all
    with pytest.raises(ssl.SSLError) as refused:
        connect(gateway.port, old).close()
    assert refused.value.reason in SERVER_REFUSED

    weak = client_context(ca)
    weak.maximum_version = ssl.TLSVersion.TLSv1_2
    weak.set_ciphers("AES128-GCM-SHA256:AES256-SHA")  # no forward secrecy
    with pytest.raises(ssl.SSLError) as refused:
        connect(gateway.port, weak).close()
    assert refused.value.reason in SERVER_REFUSED

    tls12 = client_context(ca)
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    with connect(gateway.port, tls12) as tls:
        assert tls.version() == "TLSv1.2"


def test_a_plain_http_request_to_the_tls_port_gets_no_answer(gateway: Gateway) -> None:
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=30) as raw:
        raw.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = raw.recv(4096)
    assert not answer.startswith(b"HTTP/"), answer[:100]


def healthcheck(port: int, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ocigate.gateway.cli", "healthcheck"],
        env={**os.environ, "OCIGATE_LISTEN": f"0.0.0.0:{port}", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_healthcheck_speaks_tls(gateway: Gateway, certificate: ServerFiles) -> None:
    result = healthcheck(
        gateway.port, OCIGATE_TLS_CERT=str(certificate.cert), OCIGATE_TLS_KEY=str(certificate.key)
    )
    assert result.returncode == 0, result.stderr
    assert healthcheck(gateway.port).returncode == 1  # plain HTTP gets no answer here


def test_a_certificate_swap_during_a_pull(gateway: Gateway, ca: PrivateCA, certificate: ServerFiles) -> None:
    blob = os.urandom(24 << 20)
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    url = f"https://localhost:{gateway.port}/v2/tls/swap/blobs/uploads/"
    auth = (ADMIN_USER, ADMIN_PASSWORD)
    pushed = requests.post(
        url, params={"digest": digest}, data=blob, auth=auth, verify=ca.ca_file, timeout=60
    )
    assert pushed.status_code == 201, pushed.text

    pull = connect(gateway.port, client_context(ca))
    pull.sendall(
        f"GET /v2/tls/swap/blobs/{digest} HTTP/1.1\r\nHost: localhost\r\n"
        f"Authorization: {basic_auth()}\r\n\r\n".encode()
    )
    status, headers, body = read_response_head(pull)
    assert status == 200
    assert int(headers["content-length"]) == len(blob)
    assert serial_of(pull) == 1001

    ca.issue(NAMES, serial=1002, into=certificate.cert.parent)  # atomic renames, as cert-manager
    wait_until(lambda: new_connections_get(1002, gateway.port, ca), 30, "the new certificate")

    while len(body) < len(blob):  # the pull that began before the swap finishes
        chunk = pull.recv(1 << 20)
        assert chunk, f"the pull was cut after {len(body)} of {len(blob)} bytes"
        body += chunk
    assert hashlib.sha256(body).hexdigest() == digest.removeprefix("sha256:")
    assert serial_of(pull) == 1001
    pull.close()
    assert "TLS certificate reloaded (files changed)" in gateway.log()


def test_every_worker_reloads_on_file_change_and_on_sighup(
    tmp_path: Path, ca: PrivateCA, certificate: ServerFiles
) -> None:
    gateway = tls_gateway(tmp_path, certificate, OCIGATE_WORKERS="2")
    try:
        wait_until(lambda: gateway.log().count("serving on") == 2, 30, "both workers")
        ca.issue(NAMES, serial=2002, into=certificate.cert.parent)
        # the kernel spreads connections over both workers by source port: 16 in a row from
        # one worker that did not reload are as good as impossible
        wait_until(lambda: new_connections_get(2002, gateway.port, ca, count=16), 30, "the new certificate")

        ca.issue(NAMES, serial=2003, into=certificate.cert.parent)
        assert gateway.process is not None
        gateway.process.send_signal(signal.SIGHUP)  # to the supervisor, which passes it on
        reloads = "TLS certificate reloaded (SIGHUP)"
        wait_until(lambda: gateway.log().count(reloads) == 2, 30, "a SIGHUP reload in each worker")
        assert new_connections_get(2003, gateway.port, ca, count=8)
        assert gateway.process.poll() is None
    finally:
        gateway.stop()


def test_new_files_that_do_not_load_leave_the_previous_certificate(
    gateway: Gateway, ca: PrivateCA, certificate: ServerFiles
) -> None:
    other = ca.issue(NAMES, serial=3003, into=certificate.cert.parent.parent)  # a key for another cert
    certificate.key.write_bytes(other.key.read_bytes())  # renewed key, certificate not yet
    wait_until(lambda: "TLS certificate not reloaded" in gateway.log(), 30, "a failed reload")
    assert "does not match" in gateway.log()
    assert new_connections_get(1001, gateway.port, ca)
    certificate.cert.write_bytes(other.cert.read_bytes())  # and now the certificate
    wait_until(lambda: new_connections_get(3003, gateway.port, ca), 30, "the renewed certificate")


def _get_after(
    prefix: bytes, port: int, ca: PrivateCA, closed_within: float | None = None
) -> tuple[bytes, int]:
    """A GET of /v2/ over TLS whose ClientHello goes out in one write with `prefix` (as a load
    balancer coalesces its PROXY header with the client's first bytes): the response and the
    serial of the certificate. With `closed_within`, the connection is then held open without
    an answer to the server's close_notify, and the server must close it within that many
    seconds of the response."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = client_context(ca).wrap_bio(incoming, outgoing, server_hostname="localhost")
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    with raw:
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                pass
            raw.sendall(prefix + outgoing.read())
            prefix = b""
            chunk = raw.recv(65536)
            assert chunk, "closed during the handshake"
            incoming.write(chunk)
        tls.write(b"GET /v2/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        raw.sendall(outgoing.read())
        answer = b""
        # until the whole response is in: the connection's TLS shutdown may take the server's
        # shutdown timeout (5 s) with a client that never answers its close_notify, as this one
        while not _complete(answer) and (chunk := raw.recv(65536)):
            incoming.write(chunk)
            try:
                while data := tls.read(65536):
                    answer += data
            except ssl.SSLWantReadError:
                continue
            except ssl.SSLZeroReturnError:
                break
        if closed_within is not None:
            raw.settimeout(closed_within)
            try:
                while raw.recv(65536):  # the close_notify, never answered; then the server's FIN
                    pass
            except TimeoutError:
                raise AssertionError(
                    f"the server still held the connection after {closed_within} s"
                ) from None
    return answer, serial_of(tls)


def _complete(response: bytes) -> bool:
    """Whether `response` holds a whole HTTP response with a Content-Length body."""
    head, separator, body = response.partition(b"\r\n\r\n")
    if not separator:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def test_proxy_protocol_header_before_the_handshake(
    tmp_path: Path, certificate: ServerFiles, ca: PrivateCA
) -> None:
    gateway = tls_gateway(
        tmp_path,
        certificate,
        OCIGATE_PROXY_PROTOCOL="true",
        OCIGATE_TRUSTED_PROXIES="127.0.0.1",
        OCIGATE_ACCESS_LOG="true",
        OCIGATE_LIMIT_CONNECTIONS="10",
    )
    try:
        header = b"PROXY TCP4 203.0.113.7 127.0.0.1 40000 443\r\n"
        answer, serial = _get_after(header, gateway.port, ca)
        assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]
        assert serial == 1001
        v2_header = b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c" + socket.inet_aton("198.51.100.9")
        v2_header += socket.inet_aton("127.0.0.1") + (40001).to_bytes(2, "big") + (443).to_bytes(2, "big")
        answer, _ = _get_after(v2_header, gateway.port, ca)
        assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]
        lines = [f'{client} "GET /v2/ HTTP/1.1" 401' for client in ("203.0.113.7", "198.51.100.9")]
        wait_until(lambda: all(line in gateway.log() for line in lines), 10, "the access lines")

        result = healthcheck(gateway.port, **gateway.env)
        assert result.returncode == 0, result.stderr
    finally:
        gateway.stop()


@pytest.mark.parametrize("proxied", [False, True], ids=["tls-listener", "after-proxy-header"])
def test_a_client_that_never_answers_close_notify_is_let_go(
    tmp_path: Path, certificate: ServerFiles, ca: PrivateCA, proxied: bool
) -> None:
    """After a `Connection: close` response the server sends its close_notify and waits for the
    client's. A client that keeps TCP open without answering holds the connection (and a slot
    of its per-client limit) TLS_SHUTDOWN_TIMEOUT (5 s), not asyncio's default 30 s. A deadline,
    not a measurement: the close has 25 s to come, five times what it needs, and the old
    default could never meet it."""
    env = {"OCIGATE_PROXY_PROTOCOL": "true", "OCIGATE_TRUSTED_PROXIES": "127.0.0.1"} if proxied else {}
    gateway = tls_gateway(tmp_path, certificate, **env)
    try:
        prefix = b"PROXY TCP4 203.0.113.7 127.0.0.1 40000 443\r\n" if proxied else b""
        answer, _ = _get_after(prefix, gateway.port, ca, closed_within=25)
        assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]
    finally:
        gateway.stop()


@pytest.mark.parametrize("problem", ["missing", "garbage", "mismatch", "cert only"])
def test_certificate_files_that_cannot_be_served_stop_the_start(
    problem: str, tmp_path: Path, ca: PrivateCA, certificate: ServerFiles
) -> None:
    cert, key = str(certificate.cert), str(certificate.key)
    env = {"OCIGATE_TLS_CERT": cert, "OCIGATE_TLS_KEY": key}
    expected = {
        "missing": f"OCIGATE_TLS_KEY {tmp_path}/nowhere.pem: No such file or directory",
        "garbage": "cannot serve",
        "mismatch": "the key does not match the certificate",
        "cert only": "OCIGATE_TLS_CERT and OCIGATE_TLS_KEY go together",
    }[problem]
    if problem == "missing":
        env["OCIGATE_TLS_KEY"] = str(tmp_path / "nowhere.pem")
    elif problem == "garbage":
        certificate.cert.write_text("not a certificate\n")
    elif problem == "mismatch":
        env["OCIGATE_TLS_KEY"] = str(ca.issue(NAMES, serial=9, into=tmp_path / "ca").key)
    else:
        env["OCIGATE_TLS_KEY"] = ""
    result = subprocess.run(
        [sys.executable, "-m", "ocigate.gateway.cli", "serve"],
        env={
            **os.environ,
            **env,
            "OCIGATE_LISTEN": "127.0.0.1:0",
            "OCIGATE_DATA_DIR": str(tmp_path / "data"),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert expected in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_the_consoles_session_cookie_is_secure_over_tls(gateway: Gateway, ca: PrivateCA) -> None:
    signed_in = requests.post(
        f"https://localhost:{gateway.port}/api/sessions",
        json={"username": ADMIN_USER, "password": ADMIN_PASSWORD},
        headers={"X-Requested-With": "XMLHttpRequest"},
        verify=ca.ca_file,
        timeout=30,
    )
    assert signed_in.status_code == 201, signed_in.text
    attributes = {part.strip() for part in signed_in.headers["Set-Cookie"].split(";")[1:]}
    assert {"Secure", "HttpOnly", "SameSite=Strict"} <= attributes
