"""Tracing with OTEL_EXPORTER_OTLP_ENDPOINT: spans reach an OTLP/HTTP receiver (a small one
here, decoding the protobuf as a collector would), a request's span continues the client's
`traceparent` and holds the spans of its metadata statements; without the variable nothing of
OpenTelemetry is loaded."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.registry_client import RegistryClient
from tests.servers import Gateway

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


class Receiver(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.spans: list[Any] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        export = ExportTraceServiceRequest.FromString(body)
        with self.server.lock:
            for resource in export.resource_spans:
                for scope in resource.scope_spans:
                    self.server.spans.extend(scope.spans)
        assert self.path == "/v1/traces"
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def attributes(span: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for attribute in span.attributes:
        value = attribute.value
        found[attribute.key] = getattr(value, value.WhichOneof("value"))
    return found


def test_requests_and_their_statements_are_traced(receiver: Receiver, tmp_path: Path) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    gateway = Gateway(tmp_path / "data", env=env).start()
    try:
        client = RegistryClient(gateway.url)
        parent = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
        pushed = client.request(
            "POST",
            "/v2/traced/app/blobs/uploads/",
            params={"digest": "sha256:" + "0" * 64},
            data=b"",
            headers={"traceparent": parent, "X-Request-Id": "traced-1"},
        )
        assert pushed.status_code == 400  # the digest of no bytes is not all zeros
        assert client.request("GET", "/v2/traced/app/manifests/v1").status_code == 404
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with receiver.lock:
                names = {span.name for span in receiver.spans}
            if {"POST /v2/{name}/blobs/uploads/", "GET /v2/{name}/manifests/{reference}"} <= names:
                break
            time.sleep(0.1)
    finally:
        gateway.stop()
    spans = list(receiver.spans)
    post = next(s for s in spans if s.name == "POST /v2/{name}/blobs/uploads/")
    assert post.trace_id.hex() == TRACE_ID  # continues the client's trace
    assert post.parent_span_id.hex() == "00f067aa0ba902b7"
    assert attributes(post)["http.response.status_code"] == 400
    assert attributes(post)["http.route"] == "/v2/{name}/blobs/uploads/"
    assert attributes(post)["ocigate.request_id"] == "traced-1"
    get = next(s for s in spans if s.name == "GET /v2/{name}/manifests/{reference}")
    assert get.trace_id.hex() != TRACE_ID  # a trace of its own
    statements = [s for s in spans if s.parent_span_id == get.span_id]
    assert statements, "the manifest lookup's metadata statements are children of its span"
    assert all(s.name.startswith("metadata ") for s in statements)
    assert all(attributes(s)["db.system"] == "sqlite" for s in statements)
    assert all(
        get.start_time_unix_nano <= s.start_time_unix_nano <= get.end_time_unix_nano for s in statements
    )


def test_without_an_endpoint_no_tracer_is_loaded() -> None:
    """(redis-py imports parts of OpenTelemetry by itself when it is installed: not ours.)"""
    program = (
        "import sys; from aiohttp import web; from ocigate.gateway.tracing import install_tracing; "
        "from ocigate.storage.stats import SPANS; import ocigate.gateway.server; "
        "app = web.Application(); install_tracing(app); "
        "print(len(app.middlewares), len(app.cleanup_ctx), SPANS.sink, "
        "'opentelemetry.sdk.trace' in sys.modules, "
        "'opentelemetry.exporter.otlp.proto.http.trace_exporter' in sys.modules)"
    )
    env = {"PATH": "/usr/bin:/bin"}  # no OTEL_* variable
    result = subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split() == ["0", "0", "None", "False", "False"]
