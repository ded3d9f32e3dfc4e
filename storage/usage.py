"""Pull and push counters of repositories (manifest GET = one pull, manifest PUT = one push).

Counting must cost the pull path nothing measurable, so a request only bumps an in-process
counter; a background task adds the counts to the metadata store once a second, one additive
UPDATE per repository that saw traffic (each replica and worker flushes its own, and additions
commute). The management API flushes before it reads, so its own process's counts are exact;
other processes' counts arrive within a second. A process killed with -9 loses at most its
last second of counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from .metadata.contracts import UsageRecorder

log = logging.getLogger("ocigate.usage")


@dataclass(slots=True)
class _Counts:
    pulls: int = 0
    pushes: int = 0
    last_pull_at: int = 0
    last_push_at: int = 0

    def merge(self, other: _Counts) -> None:
        self.pulls += other.pulls
        self.pushes += other.pushes
        self.last_pull_at = max(self.last_pull_at, other.last_pull_at)
        self.last_push_at = max(self.last_push_at, other.last_push_at)


class UsageCounters:
    def __init__(self, recorder: UsageRecorder, interval: float = 1.0) -> None:
        self._recorder = recorder
        self._interval = interval
        self._pending: dict[tuple[str, str], _Counts] = {}
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def _counts(self, registry_id: str, repository: str) -> _Counts:
        key = (registry_id, repository)
        counts = self._pending.get(key)
        if counts is None:
            counts = self._pending[key] = _Counts()
        return counts

    def pull(self, registry_id: str, repository: str) -> None:
        counts = self._counts(registry_id, repository)
        counts.pulls += 1
        counts.last_pull_at = int(time.time() * 1000)

    def push(self, registry_id: str, repository: str) -> None:
        counts = self._counts(registry_id, repository)
        counts.pushes += 1
        counts.last_push_at = int(time.time() * 1000)

    async def flush(self) -> None:
        async with self._lock:  # a second caller waits for the flush in progress to land
            pending, self._pending = self._pending, {}
            for index, ((registry_id, repository), counts) in enumerate(pending.items()):
                try:
                    await self._recorder.add_repository_usage(
                        registry_id,
                        repository,
                        counts.pulls,
                        counts.pushes,
                        counts.last_pull_at,
                        counts.last_push_at,
                    )
                except Exception as exc:
                    # keep what is not written yet for the next round rather than lose it
                    log.warning("usage counters not written, retrying: %s", exc)
                    for key, rest in list(pending.items())[index:]:
                        self._counts(*key).merge(rest)
                    return

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.flush()

    def start(self) -> None:
        """Flush every `interval` seconds from now on (in the running loop)."""
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop flushing, after a last flush."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self.flush()
