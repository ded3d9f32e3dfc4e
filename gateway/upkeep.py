"""Background work of every gateway process: reclaiming what abandoned uploads staged.

- Sessions idle for `OCIGATE_UPLOAD_TTL` expire (checked on a jittered period of at most 10 min).
- When the blob disk has less than `OCIGATE_MIN_FREE_SPACE` free, sessions idle for
  `OCIGATE_UPLOAD_PRESSURE_TTL` expire too (checked every minute at most): a push that died
  with its client or its process must not hold space that pushes need now.
- Staging whose session no longer exists is deleted after an hour (storage/uploads.py).

Replicas each run it; the domain makes concurrent runs safe."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ocigate.storage.errors import StorageUnavailable
from ocigate.storage.registries import Registries

log = logging.getLogger("ocigate.upkeep")
MAX_PERIOD = 600.0  # a session outlives its time to live by at most about this much
PRESSURE_CHECK = 60.0  # how often at most the free space is looked at


@dataclass(frozen=True)
class UploadReclaim:
    ttl: float  # seconds idle before a session expires
    pressure_ttl: float  # the same, while the disk is short of space
    min_free: float  # the fraction of the disk below which it is

    @property
    def period(self) -> float:
        return min(self.ttl / 2, MAX_PERIOD)

    @property
    def check(self) -> float:
        return min(self.period, self.pressure_ttl / 2, PRESSURE_CHECK)


def in_background(app: web.Application, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run `work()` as a task while the app runs; cancelled at cleanup."""

    async def run(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(work())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(run)


def install_upkeep(app: web.Application, registries: Registries, reclaim: UploadReclaim) -> None:
    in_background(app, lambda: _reclaim_uploads(registries, reclaim))


async def _reclaim_uploads(registries: Registries, reclaim: UploadReclaim) -> None:
    last_full = time.monotonic()
    while True:
        await asyncio.sleep(reclaim.check * random.uniform(0.75, 1.25))  # replicas drift apart
        try:
            if await registries.under_space_pressure(reclaim.min_free):
                expired = await registries.expire_uploads(reclaim.pressure_ttl)
                if expired:
                    log.warning(
                        "disk short of space: expired %d upload sessions idle for %g s",
                        expired,
                        reclaim.pressure_ttl,
                    )
            if time.monotonic() - last_full >= reclaim.period - reclaim.check / 2:  # about every period
                last_full = time.monotonic()
                expired = await registries.expire_uploads()
                orphans = await registries.reap_orphaned_staging()
                if expired or orphans:
                    log.info(
                        "expired %d idle upload sessions, deleted staging of %d gone ones", expired, orphans
                    )
        except StorageUnavailable as exc:  # the store logs its outage; the next round retries
            log.info("reclaiming uploads postponed: %s", exc.message)
        except Exception:
            log.exception("reclaiming uploads failed; retrying next period")
