"""OpenTelemetry traces, only when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `…_TRACES_ENDPOINT`) is
set: a span per request (named by method and route template, with its status and request id,
continuing the client's `traceparent`), and inside it a span per metadata statement and per
S3 call (storage/stats.py's `SPANS`), sent over OTLP/HTTP (protobuf) by a batching exporter
that the standard `OTEL_*` variables configure (`OTEL_SERVICE_NAME`, `OTEL_BSP_*`…).

Unset, nothing of OpenTelemetry is imported and no middleware is added; the stores pay one
attribute read per call. The packages are the `otel` extra: `pip install 'ocigate[otel]'`.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from aiohttp import web

from ocigate.storage.stats import SPANS

from .errors import Handler
from .request_id import request_id
from .request_stats import route_of

__all__ = ["install_tracing", "tracing_wanted"]

_ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def tracing_wanted(environ: Mapping[str, str] = os.environ) -> bool:
    return any(environ.get(name) for name in _ENDPOINTS)


def install_tracing(app: web.Application) -> None:
    """Trace this application's requests, if an OTLP endpoint is set."""
    if not tracing_wanted():
        return
    try:
        from opentelemetry import propagate, trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise SystemExit(
            f"ocigate: OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed ({exc.name}): "
            "pip install 'ocigate[otel]'"
        ) from None
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": "ocigate"}
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    tracer = provider.get_tracer("ocigate")
    server = trace.SpanKind.SERVER
    # store calls are timed on perf_counter; spans want nanoseconds since the epoch
    offset_ns = time.time_ns() - time.perf_counter_ns()

    def store_span(name: str, started: float, ended: float, attributes: Mapping[str, str]) -> None:
        span = tracer.start_span(name, start_time=offset_ns + int(started * 1e9), attributes=attributes)
        span.end(end_time=offset_ns + int(ended * 1e9))

    @web.middleware
    async def traced(request: web.Request, handler: Handler) -> web.StreamResponse:
        context = propagate.extract(request.headers)
        attributes: dict[str, Any] = {"http.request.method": request.method, "url.path": request.path}
        with tracer.start_as_current_span(
            f"{request.method}", context=context, kind=server, attributes=attributes
        ) as span:
            response = await handler(request)
            route = route_of(request)[0]
            span.update_name(f"{request.method} {route}")
            span.set_attribute("http.route", route)
            span.set_attribute("http.response.status_code", response.status)
            span.set_attribute("ocigate.request_id", request_id(request))
            if response.status >= 500:
                span.set_status(trace.StatusCode.ERROR)
            return response

    async def exporting(app: web.Application) -> AsyncIterator[None]:
        SPANS.sink = store_span
        yield
        SPANS.sink = None
        provider.shutdown()  # sends what the batch holds

    app.middlewares.insert(0, traced)  # outermost: error responses are seen as answered
    app.cleanup_ctx.append(exporting)
