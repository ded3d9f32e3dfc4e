"""A registry's `garbageCollectionSchedule` runs its collection once per scheduled time, on one
replica of several (gateway/gc.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ocigate.gateway.gc import last_slot, run_due
from ocigate.gateway.management.registry_models import GarbageCollectionSchedule, RegistrySettings
from ocigate.storage.metadata import MetadataStore

from .world import another_engine, filesystem_driver, layer, open_world


def test_last_slot_is_the_latest_scheduled_time_not_after_now() -> None:
    schedule = GarbageCollectionSchedule(days=["mon", "thu"], time="03:30")
    wednesday = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    assert last_slot(schedule, wednesday) == datetime(2026, 11, 30, 3, 30, tzinfo=UTC)
    thursday_early = datetime(2026, 12, 3, 3, 29, tzinfo=UTC)
    assert last_slot(schedule, thursday_early) == datetime(2026, 11, 30, 3, 30, tzinfo=UTC)
    assert last_slot(schedule, thursday_early + timedelta(minutes=1)) == thursday_early + timedelta(minutes=1)


async def test_scheduled_collection_runs_once_per_slot_on_one_of_two_replicas(
    metadata: MetadataStore, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    first = await open_world(metadata, filesystem_driver(tmp_path), "scheduled")
    second = await open_world(
        await another_engine(metadata, request, tmp_path), filesystem_driver(tmp_path), "scheduled"
    )
    await first.push_image("app", None, [layer(1)], b"{}")  # untagged: goes with the policy on
    every_day = {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "time": "12:00"}
    settings = RegistrySettings.model_validate(
        {"garbageCollectionSchedule": every_day, "deleteUntaggedManifests": True}
    )
    await metadata.registries.update_registry(first.record.id, settings.to_json())
    later = datetime.now(UTC) + timedelta(days=2)  # a scheduled time has passed since creation

    both = await asyncio.gather(
        run_due(first.registries, grace=0, now=later), run_due(second.registries, grace=0, now=later)
    )
    ran = [
        report
        for reports in both
        for report in reports
        if report.registry == "scheduled" and not report.skipped
    ]
    assert len(ran) == 1
    assert (ran[0].manifests, ran[0].links, ran[0].blobs) == (1, 2, 2)
    assert await first.stored_blobs() == []
    # done for this slot: neither replica runs it again until the next
    again = await run_due(first.registries, grace=0, now=later) + await run_due(
        second.registries, grace=0, now=later
    )
    assert [report for report in again if report.registry == "scheduled"] == []
    next_day = await run_due(second.registries, grace=0, now=later + timedelta(days=1))
    assert [report.registry for report in next_day if not report.skipped] == ["scheduled"]
    await second.metadata.close()
