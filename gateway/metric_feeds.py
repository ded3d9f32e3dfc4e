"""Which figures `/metrics` exports, and from which part: every metric of ocigate, declared
here once (names, help, labels), fed from the counts the parts keep (metrics.py)."""

from __future__ import annotations

import time
from collections.abc import Callable

from ocigate.auth.service import Authenticator
from ocigate.limiter.metrics import GAUGES as LIMITER_GAUGES
from ocigate.limiter.metrics import HELP as LIMITER_HELP
from ocigate.limiter.metrics import LimiterMetrics
from ocigate.storage.blobs.reads import BlobReads
from ocigate.storage.blobs.s3 import S3BlobDriver
from ocigate.storage.registries import Registries
from ocigate.storage.stats import LATENCY_BUCKETS

from .metrics import Exporter, Values
from .request_stats import RequestStats

__all__ = ["exporter_for"]


def exporter_for(
    registries: Registries,
    limiter: LimiterMetrics,
    authenticator: Authenticator | None,
    requests: RequestStats | None,
    usage_refresh: float,
) -> Exporter:
    exporter = Exporter()
    if requests is not None:
        _requests(exporter, requests)
    _limiter(exporter, limiter)
    _stores(exporter, registries)
    _usage(exporter, registries, usage_refresh)
    _reads(exporter, registries.reads)
    if authenticator is not None:
        _auth(exporter, authenticator)
    return exporter


def _requests(exporter: Exporter, stats: RequestStats) -> None:
    exporter.counter(
        "ocigate_http_requests",
        "HTTP requests answered, by route template, method and status class (2xx, 4xx…).",
        ("route", "method", "status"),
        stats.requests,
    )
    exporter.histogram(
        "ocigate_http_request_duration_seconds",
        "Time from a request's headers to the end of its response, by kind of route.",
        ("kind",),
        (LATENCY_BUCKETS, stats.durations),
    )
    exporter.counter(
        "ocigate_http_received_bytes",
        "Request body bytes received, by kind of route.",
        ("kind",),
        stats.received,
    )
    exporter.counter(
        "ocigate_http_sent_bytes",
        "Response bytes sent (headers included), by kind of route.",
        ("kind",),
        stats.sent,
    )


def _limiter(exporter: Exporter, metrics: LimiterMetrics) -> None:
    for field in LIMITER_HELP:
        name, text = f"ocigate_limiter_{field}", LIMITER_HELP[field]

        def read(field: str = field) -> Values:
            return {(): getattr(metrics, field)}

        if field in LIMITER_GAUGES:
            # connections open add up over workers; Redis is up only if it is for all of them
            exporter.gauge(name, text, (), read, "livesum" if field == "connections_open" else "livemin")
        else:
            exporter.counter(name, text, (), read)


def _stores(exporter: Exporter, registries: Registries) -> None:
    exporter.gauge(
        "ocigate_store_up",
        "Whether the store answers (0 during an outage).",
        ("store",),
        lambda: {(h.store,): int(h.up) for h in registries.health},
        "livemin",
    )
    exporter.counter(
        "ocigate_store_failures",
        "Requests a store failed (down, full, timed out).",
        ("store",),
        lambda: {(h.store,): h.failures for h in registries.health},
    )
    exporter.counter(
        "ocigate_store_outages",
        "Times a store went from answering to failing.",
        ("store",),
        lambda: {(h.store,): h.outages for h in registries.health},
    )
    exporter.counter(
        "ocigate_cache_lookups",
        "Lookups in the tag and manifest cache (memory or Redis), by entry and hit or miss.",
        ("entry", "result"),
        lambda: registries.cache.lookups,
    )
    exporter.histogram(
        "ocigate_metadata_statement_duration_seconds",
        "Time of metadata store statements (read or write); failures are ocigate_store_failures_total.",
        ("statement",),
        registries.metadata.engine.timings,
    )
    uploads_open: dict[tuple[str, ...], float] = {}

    async def count_uploads() -> None:
        uploads_open[()] = await registries.metadata.uploads.count_uploads()

    exporter.probe(count_uploads)
    exporter.gauge(
        "ocigate_upload_sessions_open",
        "Upload sessions in the metadata store (shared by replicas), counted at scrape time.",
        (),
        lambda: uploads_open,
        "livemostrecent",
    )
    blobs = registries.blobs
    if isinstance(blobs, S3BlobDriver):
        s3 = blobs.stats
        exporter.counter(
            "ocigate_s3_requests", "S3 API calls, by operation.", ("operation",), lambda: s3.requests
        )
        exporter.counter(
            "ocigate_s3_errors",
            "S3 API calls that failed, by operation and kind (client: 3xx/4xx, server: 5xx, connection).",
            ("operation", "kind"),
            lambda: s3.errors,
        )
        exporter.histogram(
            "ocigate_s3_request_duration_seconds",
            "Time of S3 API calls to their response headers (retries included), by operation.",
            ("operation",),
            s3.durations,
        )


def _usage(exporter: Exporter, registries: Registries, refresh: float) -> None:
    """Storage usage, summed from the metadata store by a scrape at most every `refresh` seconds
    per process (a scan of the blob links: too dear for every scrape)."""
    by_registry: dict[tuple[str, ...], float] = {}
    store: dict[str, dict[tuple[str, ...], float]] = {"blobs": {}, "bytes": {}}
    refreshed = [-refresh]

    async def measure() -> None:
        if time.monotonic() - refreshed[0] < refresh:
            return
        refreshed[0] = time.monotonic()
        used = await registries.metadata.views.storage_bytes_by_registry()
        for gone in by_registry.keys() - {(name,) for name in used}:
            by_registry[gone] = 0  # deleted: 0 rather than its last size until the restart
        by_registry.update({(name,): size for name, size in used.items()})
        blobs, stored = await registries.metadata.views.store_totals()
        store["blobs"][()], store["bytes"][()] = blobs, stored

    exporter.probe(measure)
    exporter.gauge(
        "ocigate_registry_stored_bytes",
        "Bytes of the blobs a registry's repositories link, each blob once (its storageUsage).",
        ("registry",),
        lambda: by_registry,
        "livemostrecent",
    )
    exporter.gauge(
        "ocigate_store_blobs",
        "Blobs the store holds, each once for all registries.",
        (),
        lambda: store["blobs"],
        "livemostrecent",
    )
    exporter.gauge(
        "ocigate_store_blob_bytes",
        "Bytes the store holds in blobs, each blob once for all registries (after deduplication).",
        (),
        lambda: store["bytes"],
        "livemostrecent",
    )


def _reads(exporter: Exporter, reads: BlobReads) -> None:
    """Shared reads of S3 blobs (fanout.py) and the edge cache (edge_cache.py), when on."""
    if reads.fanout is not None:
        fanout = reads.fanout
        for name, field, text in (
            ("store_reads", "flights", "Reads of blob bytes from the store."),
            ("store_read_bytes", "store_bytes", "Blob bytes received from the store."),
            ("blob_reads_joined", "joined", "Blob reads that followed a read of the store another began."),
            (
                "blob_reads_spooled",
                "spooled",
                "Slow readers moved from memory to the cache file being filled or a spill file.",
            ),
            (
                "store_reads_spilled",
                "spills",
                "Reads of the store that spilled to a temporary file for slow readers.",
            ),
            (
                "store_reads_spills_refused",
                "spills_refused",
                "Spill files not opened: the open ones held OCIGATE_CACHE_SPILL_BYTES already.",
            ),
            ("blob_reads_detached", "detached", "Slow readers that went on with a read of their own."),
            (
                "blob_reads_lingered",
                "revived",
                "Blob reads that followed an ended read of the store still holding the blob in memory.",
            ),
        ):
            exporter.counter(f"ocigate_{name}", text, (), _field(fanout.counters, field))
        exporter.gauge(
            "ocigate_blob_reads_in_flight",
            "Reads of the store in progress.",
            (),
            lambda: {(): fanout.in_flight()},
            "livesum",
        )
        exporter.gauge(
            "ocigate_blob_reads_lingering_bytes",
            "Bytes of blobs held in memory by ended reads of the store, for reads that come soon after.",
            (),
            lambda: {(): fanout.lingering_bytes},
            "livesum",
        )
    cache = reads.cache
    if cache is None:
        return
    for field, text in (
        ("hits", "Blob reads served from the edge cache."),
        ("misses", "Blob reads the edge cache did not hold."),
        ("served_bytes", "Bytes served from the edge cache."),
        ("fills", "Blobs added to the edge cache (digest verified)."),
        ("rejected", "Fills whose bytes did not match the digest (not cached)."),
        ("failed", "Fills the disk failed."),
        ("evicted", "Entries evicted, least recently used first."),
        ("discarded", "Entries removed because deleted or failing their checks."),
    ):
        exporter.counter(f"ocigate_edge_cache_{field}", text, (), _field(cache.counters, field))
    exporter.gauge(
        "ocigate_edge_cache_bytes",
        "Bytes of the edge cache's entries at the last scan (the replica's, shared by its workers).",
        (),
        lambda: {(): cache.counters.bytes},
        "livemax",
    )


def _field(counts: object, field: str) -> Callable[[], Values]:
    """A reader of one unlabelled count of `counts`."""
    return lambda: {(): getattr(counts, field)}


def _auth(exporter: Exporter, authenticator: Authenticator) -> None:
    exporter.counter(
        "ocigate_auth_attempts",
        "Authentications, by kind (password: Basic and /token logins; bearer: JWTs on /v2/) and result.",
        ("kind", "result"),
        lambda: authenticator.outcomes,
    )
    exporter.counter(
        "ocigate_auth_password_checks",
        "Password hashes computed, dummy ones for unknown names included.",
        (),
        lambda: {(): authenticator.checker.checks},
    )
    exporter.counter(
        "ocigate_auth_logins_throttled",
        "Logins refused with 429 after too many failures, unchecked.",
        (),
        lambda: {(): authenticator.throttle.throttled},
    )
    exporter.gauge(
        "ocigate_auth_password_threads",
        "Threads that compute password hashes.",
        (),
        lambda: {(): authenticator.checker.threads},
        "livesum",
    )
