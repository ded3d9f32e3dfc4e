"""The connection gate: an asyncio protocol in front of the HTTP protocol of each connection.

It runs before any HTTP byte is parsed: it reads the PROXY protocol header when that is on,
works out the client, takes a connection slot, and only then hands the connection to the HTTP
protocol (aiohttp's RequestHandler). A connection over its client's limit is closed at once; its
request is never read. The slot goes back when the connection is lost.

# SECURITY: with PROXY protocol on, only peers in the trusted-proxy list may connect at all
(the settings refuse PROXY protocol without that list): a header names the client, so one from
anybody else would let them pick their address (allow lists, limits, logs). Other peers are
closed at once, counted, and logged at most once a minute.

With TLS and PROXY protocol both on, the header comes in the clear before the TLS handshake (as
HAProxy's `send-proxy` and AWS NLB send it), so the listener is plain and the gate starts TLS
once it has the header (`_start_tls`). Without PROXY protocol the listener itself speaks TLS.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import Any, cast

from .identity import TrustedProxies, client_key
from .limiter import ConnectionLease, Limiter
from .proxy_protocol import ProxyProtocolError, parse_proxy_header

log = logging.getLogger("ocigate.limiter")

PROXY_HEADER_TIMEOUT = 5.0  # a load balancer sends it with the first packet
_MAX_EARLY_BYTES = 65536  # read ahead while a Redis answer about the slot is awaited
_admissions: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks
_WARN_EVERY = 60.0

ProtocolFactory = Callable[[], asyncio.Protocol]


class GateConfig:
    """What every gate of a listener shares."""

    def __init__(
        self,
        limiter: Limiter,
        trusted_proxies: TrustedProxies,
        proxy_protocol: bool,
        ipv6_prefix: int,
    ) -> None:
        self.limiter = limiter
        self.trusted_proxies = trusted_proxies
        self.proxy_protocol = proxy_protocol
        self.ipv6_prefix = ipv6_prefix
        self.warned_untrusted_at = -_WARN_EVERY  # loop time of the last warning about a peer
        # set by the listener's owner when the gate, not the listener, starts TLS (PROXY protocol)
        self.tls: ssl.SSLContext | None = None
        self.tls_handshake_timeout: float | None = None
        self.tls_shutdown_timeout: float | None = None

    def factory(self, inner: ProtocolFactory) -> ProtocolFactory:
        """A protocol factory for `loop.create_server` that gates `inner`'s connections."""
        return lambda: ConnectionGate(inner, self)


class ConnectionGate(asyncio.Protocol):
    __slots__ = (
        "_buffer",
        "_closed",
        "_config",
        "_inner",
        "_inner_factory",
        "_lease",
        "_paused",
        "_timer",
        "_transport",
        "client_address",
        "client_key",
        "client_tls",
        "forwarded_trusted",
    )

    def __init__(self, inner_factory: ProtocolFactory, config: GateConfig) -> None:
        self._inner_factory = inner_factory
        self._config = config
        self._inner: asyncio.Protocol | None = None
        self._transport: asyncio.Transport | None = None
        self._lease: ConnectionLease | None = None
        self._buffer = b""
        self._closed = False
        self._paused = False
        self._timer: asyncio.TimerHandle | None = None
        self.client_address: str | None = None
        self.client_key = ""
        self.client_tls = False  # the PROXY header says the client reached the proxy over TLS
        self.forwarded_trusted = False  # the peer is a trusted proxy: X-Forwarded-For counts

    # -- before the HTTP protocol takes over ---------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        peername = transport.get_extra_info("peername")
        peer = peername[0] if isinstance(peername, tuple) else None
        if self._config.proxy_protocol:
            self.client_address = peer
            if peer not in self._config.trusted_proxies:
                self._refuse_untrusted(peer)
                return
            self._timer = asyncio.get_running_loop().call_later(
                PROXY_HEADER_TIMEOUT, self._reject_header, "no PROXY protocol header in time"
            )
            return
        self._identify(peer)

    def _identify(self, address: str | None) -> None:
        config = self._config
        self.client_address = address
        self.client_key = client_key(address, config.ipv6_prefix)
        self.forwarded_trusted = address in config.trusted_proxies
        limiter = config.limiter
        # A trusted proxy's own connections carry many clients: limit those where they enter it.
        if not limiter.limits_connections or self.forwarded_trusted:
            self._open(None)
        elif limiter.shared_now:
            assert self._transport is not None
            self._transport.pause_reading()
            self._paused = True
            task = asyncio.get_running_loop().create_task(self._admit())
            _admissions.add(task)
            task.add_done_callback(_admissions.discard)
        else:
            lease = limiter.acquire_local(self.client_key)
            if lease is None:
                self._refuse()
            else:
                self._open(lease)

    async def _admit(self) -> None:
        lease = await self._config.limiter.acquire(self.client_key)
        if self._closed:  # the client gave up while we asked
            if lease is not None:
                lease.release()
        elif lease is None:
            self._refuse()
        else:
            self._open(lease)

    def _refuse(self) -> None:
        assert self._transport is not None
        self._transport.abort()  # at once: nothing to flush, the request stays unread

    def _open(self, lease: ConnectionLease | None) -> None:
        assert self._transport is not None
        self._lease = lease
        inner = self._inner = self._inner_factory()
        inner.connection_made(self._transport)
        if self._buffer:
            data, self._buffer = self._buffer, b""
            inner.data_received(data)
        if self._paused:
            self._paused = False
            if not self._transport.is_closing():
                self._transport.resume_reading()

    def _proxy_data(self, data: bytes) -> None:
        self._buffer += data
        try:
            header = parse_proxy_header(self._buffer)
        except ProxyProtocolError as exc:
            self._reject_header(str(exc))
            return
        if header is None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._buffer = self._buffer[header.length :]
        # the peer is a trusted proxy (connection_made); LOCAL / UNKNOWN: it speaks for itself
        address = header.source if header.source is not None else self.client_address
        self.client_tls = header.tls
        assert self._transport is not None
        self._transport.pause_reading()  # until the slot is decided; _open resumes
        self._paused = True
        if self._config.tls is not None:
            self._start_tls(address)
        else:
            self._identify(address)

    def _start_tls(self, address: str | None) -> None:
        """TLS over the connection, from the byte after the PROXY header; then the client is
        identified as without TLS. Bytes of the ClientHello that came with the header are fed
        to the TLS protocol by `_feed_early`, after its connection_made and before the socket
        is read again."""
        early, self._buffer = self._buffer, b""
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._upgrade(address))
        _admissions.add(task)
        task.add_done_callback(_admissions.discard)
        if early:
            # `start_tls` (run by the task's first step, next in the ready queue) sets the TLS
            # protocol on the transport and queues its connection_made and resume_reading; a
            # callback queued now runs right after that step and queues the feed behind them,
            # so all three run in one pass of the loop, before it polls the socket.
            transport = self._transport
            assert transport is not None
            loop.call_soon(lambda: loop.call_soon(_feed_early, transport, self, early))

    async def _upgrade(self, address: str | None) -> None:
        config, transport = self._config, self._transport
        assert config.tls is not None
        assert transport is not None
        try:
            tls_transport = await asyncio.get_running_loop().start_tls(
                transport,
                self,
                config.tls,
                server_side=True,
                ssl_handshake_timeout=config.tls_handshake_timeout,
                ssl_shutdown_timeout=config.tls_shutdown_timeout,
            )
        except (TimeoutError, OSError) as exc:
            log.debug("TLS handshake with %s failed: %s", address, exc)
            transport.abort()
            return
        if self._closed or tls_transport is None:
            return
        self._transport = tls_transport
        self._transport.pause_reading()  # until the slot is decided; _open resumes
        self._identify(address)

    def _refuse_untrusted(self, peer: str | None) -> None:
        self._config.limiter.metrics.proxy_untrusted_peers += 1
        now = asyncio.get_running_loop().time()
        if now >= self._config.warned_untrusted_at + _WARN_EVERY:
            self._config.warned_untrusted_at = now
            log.warning(
                "closing connection from %s: PROXY protocol is on and it is not a trusted proxy; "
                "logged once a minute, counted in /metrics",
                peer,
            )
        assert self._transport is not None
        self._transport.abort()

    def _reject_header(self, reason: str) -> None:
        self._config.limiter.metrics.proxy_header_errors += 1
        log.debug("closing connection from %s: %s", self.client_address, reason)  # counted in metrics
        if self._transport is not None:
            self._transport.abort()

    # -- the asyncio.Protocol interface, handed over once admitted ------------------------------

    def data_received(self, data: bytes) -> None:
        inner = self._inner
        if inner is not None:
            inner.data_received(data)
        elif self._config.proxy_protocol and self._timer is not None:
            self._proxy_data(data)
        else:  # bytes before the slot is decided (uvloop may read before a pause takes): keep them
            self._buffer += data
            if len(self._buffer) > _MAX_EARLY_BYTES and self._transport is not None:
                self._transport.pause_reading()

    def eof_received(self) -> bool | None:
        if self._inner is not None:
            return self._inner.eof_received()
        return None  # before admission: just close

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        lease, self._lease = self._lease, None
        if lease is not None:
            lease.release()
        if self._inner is not None:
            self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()


def _feed_early(transport: asyncio.Transport, gate: ConnectionGate, data: bytes) -> None:
    """Give the TLS protocol that now reads `transport` the bytes read before it was there."""
    protocol: Any = transport.get_protocol()
    if protocol is gate or transport.is_closing():  # start_tls failed at once, or works otherwise
        transport.abort()
        return
    view = memoryview(data)
    while view:
        buffer = protocol.get_buffer(len(view))
        size = min(len(buffer), len(view))
        buffer[:size] = view[:size]
        protocol.buffer_updated(size)
        view = view[size:]
