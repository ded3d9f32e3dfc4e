"""Once per request, after its response: its figures for `/metrics` (request_stats.py) and,
with `OCIGATE_ACCESS_LOG`, its access line.

aiohttp calls an access logger at the end of every request with the duration it measured, so
that is where the metrics are recorded: no middleware around every handler. With neither
metrics nor access lines, server.py installs no access logger and aiohttp skips the call.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from .clients import client_address
from .logs import ACCESS_FIELDS
from .request_id import request_id
from .request_stats import REGISTRY, RequestStats, bytes_sent, route_of

__all__ = ["access_logger_class"]


class _AccessLogger(AbstractAccessLogger):
    """aiohttp makes one per connection; the class attributes are the server's."""

    stats: RequestStats | None = None
    lines = False  # OCIGATE_ACCESS_LOG
    json = False  # OCIGATE_LOG_FORMAT=json

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if self.stats is not None:
            self.stats.record(request, response, time)
        if self.lines:
            if self.json:
                self._json_line(request, response, time)
            else:
                self._text_line(request, response, time)

    def _text_line(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        """aiohttp's line, with the client as the limiter and allow lists see it (a trusted
        proxy's PROXY header or X-Forwarded-For) rather than the TCP peer, and the request id."""
        headers = request.headers
        self.logger.info(
            '%s "%s %s HTTP/%d.%d" %d %d "%s" "%s" %.6f %s',
            client_address(request) or "-",
            request.method,
            request.path_qs,
            request.version.major,
            request.version.minor,
            response.status,
            response.body_length,
            headers.get("Referer", "-"),
            headers.get("User-Agent", "-"),
            time,
            request_id(request),
        )

    def _json_line(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        fields = {
            "request_id": request_id(request),
            "registry": request.get(REGISTRY),
            "client": client_address(request),
            "method": request.method,
            "path": request.path,
            "route": route_of(request)[0],
            "status": response.status,
            "duration": round(time, 6),
            "bytes_in": request.content.total_bytes,
            "bytes_out": bytes_sent(request, response),
            "user_agent": request.headers.get("User-Agent"),
        }
        self.logger.info(
            "%s %s %d", request.method, request.path, response.status, extra={ACCESS_FIELDS: fields}
        )


class _MetricsOnly(_AccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.stats.record(request, response, time)  # type: ignore[union-attr]  # set, see below


def access_logger_class(stats: RequestStats | None, lines: bool, json: bool) -> type[AbstractAccessLogger]:
    base = _MetricsOnly if stats is not None and not lines else _AccessLogger  # the common case
    return type("AccessLogger", (base,), {"stats": stats, "lines": lines, "json": json})
