"""Server bootstrap: uvloop, logging, the listening socket."""

from __future__ import annotations

import asyncio
import logging
import signal

import uvloop
from aiohttp import web

from storage.registries import Registries

from .app import build_app
from .settings import Settings

log = logging.getLogger("ocigate")


def serve(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    uvloop.run(_serve(settings))


async def _serve(settings: Settings) -> None:
    registries = await Registries.open(settings.storage())
    app = build_app(settings, registries)
    runner = web.AppRunner(
        app,
        access_log=logging.getLogger("ocigate.access") if settings.access_log else None,
        handle_signals=False,
    )
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, backlog=1024, reuse_address=True)
    await site.start()
    log.info(
        "ocigate serving on %s (data in %s, domain %s)",
        settings.listen,
        settings.data_dir.resolve(),
        settings.domain or "-",
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log.info("shutting down")
    await runner.cleanup()
