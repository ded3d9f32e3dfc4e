"""The HTTP protocol of one client connection: aiohttp's, with what a registry open to the
internet needs around it.

- Keep-alive: an idle connection between requests is closed after `OCIGATE_KEEPALIVE_TIMEOUT`
  (aiohttp's `keepalive_timeout`; it also bounds a connection that never sends a request).
- Headers: once a request's first bytes are in, all its headers must be within
  `OCIGATE_HEADER_TIMEOUT`: a client trickling headers holds a descriptor and a connection
  slot for nothing. (Bodies have their own idle timeout, where they are read: http.py.)
- Durations for the access logger (metrics, access lines) on `time.perf_counter()`: aiohttp
  reads `loop.time()`, which under uvloop counts whole milliseconds, as of the start of the
  loop's iteration, while a manifest GET takes a tenth of one.
- Drain (drain.py): once the process is draining, every response says `Connection: close` and
  the connection closes after it; a connection idle between requests is closed at once.
- A request aiohttp cannot parse is answered with an OCI error body and logged as one warning
  line, not as a traceback: on a public port that is noise, not a fault of ours. The answer
  carries an `X-Request-Id` made here, also on the warning and (with `OCIGATE_ACCESS_LOG`) on
  its access line. A client's own id is not taken: its headers were not parsed, and digging it
  out of bytes the parser refused would trust the very input it found broken.
"""

from __future__ import annotations

import asyncio
import logging
from time import perf_counter
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod
from aiohttp.web_protocol import RequestHandler

from .errors import API_VERSION_HEADER, oci_error
from .logs import ACCESS_FIELDS
from .request_id import HEADER as REQUEST_ID_HEADER
from .request_id import request_id

if TYPE_CHECKING:
    from .drain import Drain

log = logging.getLogger("ocigate.gateway")
_FRESH_GRACE = 5.0  # seconds a new connection gets to send its first request once draining


class RegistryRequestHandler(RequestHandler):
    __slots__ = ("_drain", "_draining", "_header_timeout", "_header_timer", "_opened_at", "_partial", "_used")

    def __init__(self, manager: web.Server, *, header_timeout: float, drain: Drain, **options: Any) -> None:
        super().__init__(manager, **options)
        self._header_timeout = header_timeout
        self._header_timer: asyncio.TimerHandle | None = None
        self._partial = False  # some bytes of the next request are in, not all its headers
        self._drain = drain
        self._draining = False
        self._used = False  # some request bytes came
        self._opened_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._opened_at = self._loop.time()
        if self._drain.draining:
            self.drain()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._used = True
        # aiohttp waits on `_waiter` exactly while no whole request is in: then these bytes
        # began one (or continued one that began earlier)
        waiter = self._waiter
        self._partial = waiter is not None and not waiter.done()
        if self._partial:
            if self._header_timer is None and self._header_timeout > 0:
                self._header_timer = self._loop.call_later(self._header_timeout, self._headers_too_slow)
        elif self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    @property
    def idle(self) -> bool:
        """Between requests, with nothing of the next one in. A connection that has not sent a
        byte yet counts only after a while (as in Go's http.Server): a balancer passes on the
        request just after the connection, and closing it in between fails that request."""
        waiter = self._waiter
        if waiter is None or waiter.done() or self._partial or self._messages:
            return False
        return self._used or self._loop.time() - self._opened_at > _FRESH_GRACE

    def drain(self) -> None:
        """From now on each response closes the connection (and says so); closed now if idle.
        (Not aiohttp's `close()` on a busy connection: it drops the rest of a request body.)"""
        if not self._draining and self._request_factory is not None:
            self._draining = True
            factory = self._request_factory
            self._request_factory = lambda message, *args: factory(message._replace(should_close=True), *args)
        if self.idle:
            self.force_close()  # as aiohttp's keep-alive timeout does

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            log.debug("closing a connection whose request headers took over %s s", self._header_timeout)
            self.force_close()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().connection_lost(exc)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500:  # not the client's doing: aiohttp's answer and its traceback
            answer = super().handle_error(request, status, exc, message)
            answer.headers[REQUEST_ID_HEADER] = request_id(request)
            return answer
        made_id = request_id(request)  # the parser gave no headers: always one made here
        if isinstance(exc, BadHttpMethod):  # not HTTP at all (TLS to a plain port, a scanner)
            log.debug("not an HTTP request from %s: %s", request.remote, exc)
        else:
            log.warning(
                "malformed HTTP request from %s (request id %s): %s",
                request.remote,
                made_id,
                message or exc,
                extra={ACCESS_FIELDS: {"request_id": made_id}},
            )
        if request.writer.output_size > 0:  # as aiohttp: a response is on its way already
            raise ConnectionError("a response was sent already; cannot answer with an error")
        response = oci_error(status, "UNSUPPORTED", "malformed HTTP request", message or str(exc))
        response.headers[API_VERSION_HEADER[0]] = API_VERSION_HEADER[1]
        response.headers[REQUEST_ID_HEADER] = made_id
        response.force_close()
        return response


class TimedRequestHandler(RegistryRequestHandler):
    """With an access logger (metrics, access lines): durations on perf_counter, from the
    moment aiohttp makes the request (its headers parsed). A connection serves one request at
    a time, so one stamp per connection will do; apart, as nothing reads it otherwise."""

    __slots__ = ("_make_request", "_started")

    def __init__(self, manager: web.Server, *, header_timeout: float, drain: Drain, **options: Any) -> None:
        super().__init__(manager, header_timeout=header_timeout, drain=drain, **options)
        self._started = 0.0
        self._make_request = manager.request_factory
        self._request_factory = self._stamped_request

    def _stamped_request(self, *args: Any) -> web.BaseRequest:
        self._started = perf_counter()
        return self._make_request(*args)

    def log_access(self, request: web.BaseRequest, response: web.StreamResponse, time: float | None) -> None:
        if self._logging_enabled and self.access_logger is not None:
            self.access_logger.log(request, response, perf_counter() - self._started)


def handler_factory(server: web.Server, header_timeout: float, drain: Drain, **options: Any) -> Any:
    """A protocol factory for `loop.create_server`, in place of aiohttp's `server` itself."""
    loop = asyncio.get_running_loop()
    handler = TimedRequestHandler if options.get("access_log") else RegistryRequestHandler
    return lambda: handler(server, loop=loop, header_timeout=header_timeout, drain=drain, **options)
