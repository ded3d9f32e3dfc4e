"""Server bootstrap: uvloop, logging, the listening socket (TLS: tls.py), signals: SIGTERM and
SIGINT drain and stop (drain.py), SIGHUP reloads the TLS certificate."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import signal
from typing import Any

import uvloop
from aiohttp import web

from ocigate.storage.registries import Registries

from .access import open_authenticator, prepare_access
from .access_log import access_logger_class
from .app import REQUEST_STATS, build_app
from .connection import handler_factory
from .drain import DRAIN
from .fast_path import v2_fast_path
from .limits import GATE
from .listener import TLS_SHUTDOWN_TIMEOUT, Listener
from .logs import configure_logging
from .settings import Settings
from .tls import Certificates, TlsError, server_context

log = logging.getLogger("ocigate")
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt(3)


def _tune_malloc() -> None:
    """Allocations over 4 MiB get their own mapping, unmapped when freed; smaller ones come from
    the heap, which keeps up to 16 MiB free at its top instead of 128 KiB. By default glibc raises
    the mapping threshold each time a mapped block is freed (up to 32 MiB), after which big
    buffers come from the heap, fragment it and are not given back to the OS. Below 4 MiB, reuse
    wins: 1 MiB read buffers mapped or trimmed and faulted in afresh for every batch cost a blob
    GET half again as much CPU. (S3 part buffers are mmaps of their own, outside malloc.)"""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 4 * 1024 * 1024)
        libc.mallopt(_M_TRIM_THRESHOLD, 16 * 1024 * 1024)
    except (OSError, AttributeError):  # not glibc
        pass


def serve(settings: Settings) -> None:
    _tune_malloc()
    configure_logging(settings.server.log_level, settings.server.log_format)
    tls = settings.tls
    if tls.cert is not None and tls.key is not None:
        try:  # here, once, so that a bad file ends the start with one line (not N workers' tracebacks)
            server_context(tls.cert, tls.key)
        except TlsError as exc:
            raise SystemExit(f"ocigate: TLS: {exc}") from None
    uvloop.run(_prepare(settings))
    if settings.server.workers > 1:
        from .workers import supervise

        supervise(settings, lambda: uvloop.run(_serve(settings, reuse_port=True)))
        return
    uvloop.run(_serve(settings))


async def open_registries(settings: Settings) -> Registries:
    return await Registries.open(settings.storage, settings.redis.shared_url)


async def _prepare(settings: Settings) -> None:
    registries = await open_registries(settings)
    try:
        await prepare_access(settings, registries)
    finally:
        await registries.close()


async def _serve(settings: Settings, reuse_port: bool = False) -> None:
    registries = await open_registries(settings)
    try:
        authenticator = await open_authenticator(settings, registries)
        app = build_app(settings, registries, authenticator)
    except BaseException:
        await registries.close()  # aiosqlite's threads would otherwise keep the process alive
        raise
    stats, lines = app.get(REQUEST_STATS), settings.server.access_log
    options: dict[str, Any] = {
        # none at all when there is nothing to do per request: aiohttp then skips the call
        "access_log": logging.getLogger("ocigate.access") if stats is not None or lines else None,
        "access_log_class": access_logger_class(stats, lines, settings.server.log_format == "json"),
        "keepalive_timeout": settings.http.keepalive_timeout,
        "max_field_size": 16384,  # long bearer tokens
    }
    # requests still running when the drain's timeout is over are cut (drain.py waited already)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5, **options)
    await runner.setup()
    server = settings.server
    listener = Listener(server.host, server.port, reuse_port=reuse_port)
    loop = asyncio.get_running_loop()
    certificates: Certificates | None = None
    watching: asyncio.Task[None] | None = None
    try:
        assert runner.server is not None
        runner.server.request_handler = v2_fast_path(app)  # type: ignore[assignment]
        drain = app[DRAIN]
        handler = handler_factory(runner.server, settings.http.header_timeout, drain, **options)
        gate = app.get(GATE)
        tls, handshake_timeout = None, settings.http.header_timeout or None
        if settings.tls.cert is not None and settings.tls.key is not None:
            certificates = Certificates(settings.tls.cert, settings.tls.key)
            watching = loop.create_task(certificates.watch())
            tls = certificates.context
            if gate is not None and gate.proxy_protocol:  # the PROXY header comes before TLS
                gate.tls, gate.tls_handshake_timeout = tls, handshake_timeout
                gate.tls_shutdown_timeout = TLS_SHUTDOWN_TIMEOUT
                tls = None
        await listener.start(handler if gate is None else gate.factory(handler), tls, handshake_timeout)
        log.info(
            "ocigate serving on %s%s (data in %s, domain %s)",
            server.listen,
            " with TLS" if certificates is not None else "",
            settings.storage.data_dir.resolve(),
            server.domain or "-",
        )
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        loop.add_signal_handler(signal.SIGHUP, _reload, certificates)
        await stop.wait()
        await drain.run(runner.server, listener.close)
        log.info("shutting down")
    finally:
        if watching is not None:
            watching.cancel()
        listener.close()
        await runner.cleanup()  # closes the connections, then the stores (on_cleanup)


def _reload(certificates: Certificates | None) -> None:
    if certificates is None:
        log.info("SIGHUP: nothing to reload (no OCIGATE_TLS_CERT)")
    else:
        certificates.reload()
