"""Garbage collection as the registries ask for it: each registry's `garbageCollectionSchedule`
(days of the week and a time, UTC) runs a collection of it in the gateway, and `ocigate gc`
runs one now. Every replica checks the schedules; the collector's lock lets one of them run a
given registry's collection, and the run it records tells the others it is done."""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import UTC, datetime, timedelta

from aiohttp import web

from ocigate.storage.collector import GcReport
from ocigate.storage.errors import StorageUnavailable
from ocigate.storage.metadata import RegistryRecord
from ocigate.storage.registries import Registries

from .management.registry_models import DAYS, GarbageCollectionSchedule, RegistrySettings
from .upkeep import in_background

log = logging.getLogger("ocigate.gc")
CHECK_PERIOD = 60.0  # seconds between looks at the schedules


async def collect(
    registries: Registries,
    record: RegistryRecord,
    *,
    grace: float,
    dry_run: bool = False,
    since: int | None = None,
    started_at: int | None = None,
) -> GcReport:
    """One collection of `record` under its own policy (`deleteUntaggedManifests`)."""
    settings = RegistrySettings.stored(record.properties)
    return await registries.collector().collect(
        record,
        grace=grace,
        untagged=settings.delete_untagged_manifests,
        dry_run=dry_run,
        unless_run_since=since,
        started_at=started_at,
    )


def last_slot(schedule: GarbageCollectionSchedule, now: datetime) -> datetime:
    """The latest scheduled time at or before `now` (UTC)."""
    hour, minute = (int(part) for part in schedule.time.split(":"))
    for back in range(8):
        day = now - timedelta(days=back)
        if DAYS[day.weekday()] in schedule.days:
            slot = day.replace(hour=hour, minute=minute, second=0, microsecond=0)
            if slot <= now:
                return slot
    raise AssertionError("a schedule names at least one day")


async def due_slot(registries: Registries, record: RegistryRecord, now: datetime) -> int | None:
    """The scheduled time (ms) of a collection of `record` not run yet, or None."""
    schedule = RegistrySettings.stored(record.properties).garbage_collection_schedule
    if schedule is None:
        return None
    slot = int(last_slot(schedule, now).timestamp() * 1000)
    if slot < record.created_at:
        return None
    last = await registries.collector().last_run(record.id)
    return None if last is not None and last.started_at >= slot else slot


async def run_due(registries: Registries, grace: float, now: datetime | None = None) -> list[GcReport]:
    """Collect every registry whose scheduled time has come since its last collection."""
    reports = []
    moment = now or datetime.now(UTC)
    started_at = None if now is None else int(now.timestamp() * 1000)
    for record in await registries.metadata.registries.list_registries():
        slot = await due_slot(registries, record, moment)
        if slot is not None:
            reports.append(await collect(registries, record, grace=grace, since=slot, started_at=started_at))
    return reports


def install_gc_schedule(app: web.Application, registries: Registries, grace: float) -> None:
    in_background(app, lambda: _scheduler(registries, grace))


async def _scheduler(registries: Registries, grace: float) -> None:
    while True:
        await asyncio.sleep(CHECK_PERIOD * random.uniform(0.5, 1.0))  # replicas drift apart
        try:
            await run_due(registries, grace)
        except StorageUnavailable as exc:
            log.info("scheduled garbage collection postponed: %s", exc.message)
        except Exception:
            log.exception("scheduled garbage collection failed; retrying at the next check")
