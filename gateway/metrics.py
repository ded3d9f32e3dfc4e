"""`/metrics`: the figures of every part of the gateway, exported with prometheus_client.

The parts keep plain counts and durations (storage/stats.py; the limiter's and the password
checker's own counters): a dict entry or an attribute bumped on a request's path. An
`Exporter` moves what changed since the last time into prometheus_client's metrics about once a
second and before each scrape. With `--workers N` prometheus_client runs in multiprocess mode
(`PROMETHEUS_MULTIPROC_DIR`, a private directory the supervisor makes, workers.py): each worker
writes its values to files there and a scrape, answered by whichever worker the kernel hands
the connection to, adds up every worker's (up to a second behind for the others).

No label holds anything unbounded: no repository, host or client address.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Literal

import prometheus_client
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4  # what every Prometheus reads
from prometheus_client.multiprocess import MultiProcessCollector

from ocigate.storage.stats import Timings

from .workers import MULTIPROCESS_DIR_ENV

__all__ = ["Exporter", "install_metrics", "multiprocess"]

log = logging.getLogger("ocigate.gateway")

FLUSH_INTERVAL = 1.0  # seconds
Values = Mapping[tuple[str, ...], float]
Rows = Mapping[tuple[str, ...], list[float]]  # laid out as `Timings.rows`
GaugeMode = Literal["livesum", "livemin", "livemax", "livemostrecent"]

# no `_created` series: noise to every dashboard here
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROCESS_DIR_ENV))  # set by workers.py (or whoever runs us)


class Exporter:
    def __init__(self) -> None:
        self.multiprocess = multiprocess()
        # metrics live in a registry of their own, so that two apps in one process (tests) do
        # not collide in prometheus_client's global one
        self.registry = CollectorRegistry(auto_describe=True)
        if self.multiprocess:
            self._scraped = CollectorRegistry()
            MultiProcessCollector(self._scraped)  # type: ignore[no-untyped-call]
        else:
            self._scraped = self.registry
            prometheus_client.ProcessCollector(registry=self.registry)
        self._feeds: list[Callable[[], None]] = []
        self._probes: list[Callable[[], Awaitable[None]]] = []

    def counter(
        self, name: str, documentation: str, labels: Sequence[str], read: Callable[[], Values]
    ) -> None:
        """A counter fed from `read()`: totals since start, by label values."""
        metric = Counter(name, documentation, labels, registry=self.registry)
        fed: dict[tuple[str, ...], float] = {}

        def feed() -> None:
            for key, total in list(read().items()):
                delta = total - fed.get(key, 0)
                if delta > 0:
                    (metric.labels(*key) if key else metric).inc(delta)
                    fed[key] = total

        self._feeds.append(feed)

    def histogram(
        self,
        name: str,
        documentation: str,
        labels: Sequence[str],
        timings: Timings | tuple[tuple[float, ...], Callable[[], Rows]],
    ) -> None:
        """A histogram fed from `Timings`, or from (bounds, a function returning rows)."""
        read: Callable[[], Rows]
        if isinstance(timings, Timings):
            bounds, rows = timings.bounds, timings.rows
            read = lambda: rows  # noqa: E731
        else:
            bounds, read = timings
        metric = Histogram(name, documentation, labels, registry=self.registry, buckets=bounds)
        fed: dict[tuple[str, ...], list[float]] = {}

        def feed() -> None:
            for key, row in list(read().items()):
                before = fed.get(key)
                if before is None:
                    before = fed[key] = [0.0] * len(row)
                if row == before:
                    continue
                child = metric.labels(*key) if key else metric
                # prometheus_client takes one observation at a time; these are many, already
                # in their buckets: added to its per-bucket values (not cumulative) and sum
                for index, (now, then) in enumerate(zip(row[:-1], before[:-1], strict=True)):
                    if now > then:
                        child._buckets[index].inc(now - then)
                child._sum.inc(row[-1] - before[-1])
                fed[key] = list(row)

        self._feeds.append(feed)

    def gauge(
        self,
        name: str,
        documentation: str,
        labels: Sequence[str],
        read: Callable[[], Values],
        mode: GaugeMode,
    ) -> None:
        """A gauge set from `read()`; `mode` says how workers' values add up (live: only those
        of workers alive)."""
        metric = Gauge(name, documentation, labels, registry=self.registry, multiprocess_mode=mode)

        def feed() -> None:
            for key, value in list(read().items()):
                (metric.labels(*key) if key else metric).set(value)

        self._feeds.append(feed)

    def probe(self, probe: Callable[[], Awaitable[None]]) -> None:
        """Run before each scrape (e.g. a count from the metadata store)."""
        self._probes.append(probe)

    def flush(self) -> None:
        for feed in self._feeds:
            feed()

    async def scrape(self) -> bytes:
        for probe in self._probes:
            try:
                await probe()
            except Exception as exc:  # a store that is down says so in its own metrics
                log.debug("metrics probe failed: %s", exc)
        self.flush()
        return prometheus_client.generate_latest(self._scraped)

    async def flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            try:
                self.flush()
            except Exception:  # a bug in one feed must not end the flushing of all
                log.exception("moving figures into the metrics failed")


EXPORTER = web.AppKey("exporter", Exporter)


def install_metrics(app: web.Application, exporter: Exporter) -> None:
    app[EXPORTER] = exporter

    async def metrics(request: web.Request) -> web.Response:
        body = await exporter.scrape()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})

    async def flushing(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(exporter.flush_periodically())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        exporter.flush()  # a worker's last second, into its files

    app.router.add_get("/metrics", metrics)
    app.cleanup_ctx.append(flushing)
