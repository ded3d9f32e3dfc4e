"""skopeo through a load balancer that terminates TLS (as an AWS NLB's TLS listener): the gateway
behind it speaks plain HTTP and learns from the PROXY v2 header's SSL TLV that the client used
TLS, so the token realm it sends says https. With a realm saying http, skopeo would fetch the
token in the clear, with the password, from a port that only speaks TLS: it fails."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from ..harness.tls import PrivateCA
from ..limiter.probes import proxy_v2, ssl_tlv
from ..servers import ADMIN_PASSWORD, ADMIN_USER, Gateway
from .conftest import Clients
from .images import make_image

pytestmark = pytest.mark.e2e

CREDS = f"{ADMIN_USER}:{ADMIN_PASSWORD}"
T = TypeVar("T")


class TlsOffload:
    """A TLS listener on 127.0.0.1 that hands the gateway each connection's plain bytes after a
    PROXY v2 header naming the client, with the SSL TLV; on a loop in a thread of its own."""

    def __init__(self, context: ssl.SSLContext, gateway_port: int) -> None:
        self._context, self._gateway_port = context, gateway_port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0
        self.connections = 0  # handed over to the gateway after a TLS handshake

    def __enter__(self) -> TlsOffload:
        self._thread.start()
        self._server = self._run(asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._context))
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        self._run(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(30)

    async def _close(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        client = writer.get_extra_info("peername")[0]
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self._gateway_port)
        self._writers.update((writer, upstream_writer))
        upstream_writer.write(proxy_v2(client, tlv=ssl_tlv()))
        try:
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        finally:
            for stream in (writer, upstream_writer):
                self._writers.discard(stream)
                stream.transport.abort()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Bytes one way until the source ends; then the end goes on too."""
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
        if sink.can_write_eof():
            sink.write_eof()


def test_skopeo_pushes_and_pulls_through_a_balancer_that_terminates_tls(
    clients: Clients, repository: str, tmp_path: Path
) -> None:
    ca = PrivateCA(tmp_path / "ca")
    files = ca.issue(["localhost"], serial=7101, into=tmp_path)
    cert_dir = tmp_path / "certs"
    cert_dir.mkdir()
    shutil.copy(ca.ca_file, cert_dir / "ca.crt")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(files.cert, files.key)
    env = {"OCIGATE_PROXY_PROTOCOL": "true", "OCIGATE_TRUSTED_PROXIES": "127.0.0.1/32"}
    gateway = Gateway(tmp_path / "data", env=env).start(ready=Gateway.serving)
    try:
        with TlsOffload(context, gateway.port) as balancer:
            image = make_image(tmp_path / "src", "v1", layers=2)
            ref = f"docker://localhost:{balancer.port}/{repository}:v1"
            verify = ("--dest-tls-verify=true", "--dest-cert-dir", cert_dir, "--dest-creds", CREDS)
            clients.skopeo("copy", *verify, image.oci_ref, ref)
            pulled = tmp_path / "pulled"
            verify = ("--src-tls-verify=true", "--src-cert-dir", cert_dir, "--src-creds", CREDS)
            clients.skopeo("copy", *verify, ref, f"oci:{pulled}:v1")
            assert (pulled / "blobs" / "sha256" / image.digest.removeprefix("sha256:")).exists()
            assert balancer.connections >= 2  # the registry's and the token's, both over TLS
    finally:
        gateway.stop()
