"""Background work of every gateway process: expiring idle upload sessions.

Replicas each run it on a jittered period; the domain makes concurrent runs safe."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator

from aiohttp import web

from ocigate.storage.registries import Registries

log = logging.getLogger("ocigate.upkeep")
MAX_PERIOD = 600.0  # a session outlives its time to live by at most about this much


def install_upkeep(app: web.Application, registries: Registries, upload_ttl: int) -> None:
    period = min(upload_ttl / 2, MAX_PERIOD)

    async def run(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(_expire_uploads(registries, period))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(run)


async def _expire_uploads(registries: Registries, period: float) -> None:
    while True:
        await asyncio.sleep(period * random.uniform(0.75, 1.25))  # replicas drift apart
        try:
            expired = await registries.expire_uploads()
        except Exception:
            log.exception("expiring idle upload sessions failed; retrying next period")
            continue
        if expired:
            log.info("expired %d idle upload sessions", expired)
