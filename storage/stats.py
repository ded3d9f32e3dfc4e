"""Counts and durations as the parts of ocigate keep them: plain numbers, cheap to bump on a
request's path, read by `/metrics` (gateway/metrics.py), which hands them to prometheus_client.

Bumping prometheus_client's own metrics on every request costs 1-3 µs each in multiprocess
mode (a lock and an mmap write per value), several per request: more than the 3% of a manifest
GET the gateway may spend on metrics. Here a count is a dict entry and a duration a bisect
into its bucket; the gateway moves what changed into prometheus_client about once a second
and before every scrape. Keys are tuples of bounded label values (an S3 operation, a route
template, a status class), never anything a client chose.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Mapping

__all__ = ["LATENCY_BUCKETS", "SPANS", "Counts", "SpanSink", "Timings"]

# seconds: a manifest from memory in ~0.1 ms, an S3 part of 16 MiB in seconds
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

Counts = Counter[tuple[str, ...]]  # totals by label values, since start


class Timings:
    """Durations by label values, as the cumulative-free bucket counts of a histogram: row[i]
    counts those ≤ bounds[i] and above bounds[i-1], row[len(bounds)] those above all, and the
    last cell holds their sum."""

    __slots__ = ("bounds", "rows")

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.bounds = bounds
        self.rows: dict[tuple[str, ...], list[float]] = {}

    def observe(self, key: tuple[str, ...], seconds: float) -> None:
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = [0.0] * (len(self.bounds) + 2)
        row[bisect_left(self.bounds, seconds)] += 1
        row[-1] += seconds

    def count(self, key: tuple[str, ...]) -> int:
        row = self.rows.get(key)
        return 0 if row is None else int(sum(row[:-1]))


SpanSink = Callable[[str, float, float, Mapping[str, str]], None]


class Spans:
    """Where store calls go as trace spans when tracing is on (gateway/tracing.py sets `sink`):
    a name, start and end (`time.perf_counter()` seconds) and attributes. Off, `sink` is None
    and a store call pays one attribute read."""

    sink: SpanSink | None = None


SPANS = Spans()
