"""Online garbage collection, safe under concurrent pushes on any number of replicas.

What goes, per registry (one collector per registry at a time, across processes):
1. With the registry's `deleteUntaggedManifests` on: manifests no tag names, no index lists
   and that are not OCI 1.1 referrers of a subject still present (signatures and SBOMs are
   untagged by design: they go with their subject), once pushed longer ago than the grace
   period; repeated, since removing an index frees its children, a subject its referrers.
2. Blob links that no manifest of the repository references, last linked longer ago than the
   grace period (a layer pushed before its manifest must survive until the manifest comes).
Then, globally (blobs are stored once for all registries; one sweep at a time):
3. Blob rows no link names, deleted with their locations queued in the same transaction; then
   their bytes, from the filesystem or S3 (batched); then the queue rows.

Why a push racing the collector never ends with a manifest whose bytes are gone, even with a
grace period of 0 (storage/metadata/collection.py has the statements):
- A manifest's references (`manifest_blobs`, `manifest_children`) are written in the manifest's
  own transaction, with foreign keys to the links and child manifests. Whichever of the push and
  the collector's delete commits second fails on the foreign key: the push answers
  MANIFEST_BLOB_UNKNOWN (the client pushes the blob again), or the collector leaves the row.
- A link has a foreign key to its blob row, so a blob row cannot be deleted while linked, and a
  link (upload, mount) cannot be made to a row being deleted: the upload then stores its own copy,
  the mount answers 202 and the client uploads.
- Bytes are deleted only after the row's deletion committed, and a committed upload never reuses
  a location (filesystem names carry the upload id, S3 keys are per upload).
- A crash at any step leaves rows with their bytes, or queued locations the next run deletes.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .blobs import BlobDriver
from .cache import MetadataCache
from .errors import RegistryError
from .manifests import parse_manifest
from .metadata import BlobRecord, MetadataStore, RegistryRecord
from .metadata.collection import Candidate, GcRun, SqlCollection

BATCH = 200  # rows per transaction: serving never waits long behind the collector
DELETE_BATCH = 1000  # queued locations per store call: as many keys as one S3 DeleteObjects takes
RECONCILE_PAGE = 1000  # store objects looked at per collection by the reconciling scan
RECONCILE_AGE = 3600.0  # seconds an object no metadata knows must be old before it is deleted
PASSES = 16  # rounds of untagged-manifest removal (each frees what the last one held)
SWEEP_LOCK = "gc:sweep"
# an upload id in a location (S3: blobs/<id>[/<tail>]; filesystem: sha256/ab/<hex>.<id>)
_UPLOAD_ID = re.compile(r"(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])")

log = logging.getLogger("ocigate.gc")
Hook = Callable[[str], Awaitable[None]]
Discard = Callable[[BlobRecord], Awaitable[None]]  # drops a blob from this process's edge cache


@dataclass(slots=True)
class GcReport:
    """What one collection removed (or, in a dry run, would remove now)."""

    registry: str | None = None
    manifests: int = 0
    links: int = 0
    blobs: int = 0
    bytes: int = 0
    dry_run: bool = False
    skipped: bool = False  # another collector held the registry's lock
    swept: bool = True  # False: another process was sweeping blobs; it frees them
    orphans: int = 0  # store objects no metadata knew (a crash between a write and its commit)

    def summary(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        where = f"registry {self.registry}" if self.registry else "blobs"
        if self.skipped:
            return f"{where}: skipped, another collection is running"
        text = (
            f"{where}: {verb} {self.manifests} manifests, {self.links} blob links, "
            f"{self.blobs} blobs ({self.bytes} bytes)"
        )
        if self.orphans:
            text += f", {self.orphans} orphaned store objects"
        return text if self.swept else text + "; blob sweep left to the collection running elsewhere"


async def _no_hook(step: str) -> None:
    return None


class Collector:
    def __init__(
        self,
        metadata: MetadataStore,
        blobs: BlobDriver,
        cache: MetadataCache | None = None,
        *,
        batch: int = BATCH,
        hook: Hook | None = None,
        discard: Discard | None = None,
    ) -> None:
        self._engine = metadata.engine
        self._sql = SqlCollection(metadata.engine)
        self._uploads = metadata.uploads
        self._blobs = blobs
        self._cache = cache
        self._batch = batch
        self._hook = hook or _no_hook  # tests pause here to interleave pushes deterministically
        self._discard = discard

    async def collect(
        self,
        registry: RegistryRecord,
        *,
        grace: float,
        untagged: bool,
        dry_run: bool = False,
        unless_run_since: int | None = None,
        started_at: int | None = None,
    ) -> GcReport:
        """Collect one registry, then sweep blobs no registry links any more. With
        `unless_run_since` (ms), skip if a collection of it started since then (a scheduled run
        another replica did meanwhile). `started_at` (ms): the time it counts as started, if not now."""
        report = GcReport(registry.name, dry_run=dry_run)
        started = _now_ms() if started_at is None else started_at
        async with self._engine.try_lock(f"gc:registry:{registry.id}") as held:
            last = await self._sql.last_run(registry.id) if unless_run_since is not None else None
            if not held or (last is not None and last.started_at >= (unless_run_since or 0)):
                report.skipped = True
                return report
            cutoff = started - int(grace * 1000)
            await self._index(registry.id)
            if untagged:
                report.manifests = await self._untagged(registry.id, cutoff, dry_run)
            report.links = await self._links(registry.id, cutoff, dry_run)
            swept = await self.sweep(dry_run=dry_run)
            if swept is None:
                report.swept = False
            else:
                report.blobs, report.bytes = swept
                report.orphans = 0 if dry_run else await self.reconcile()
            if not dry_run:  # recorded under the lock: a replica that takes it next sees the run
                run = GcRun(started, _now_ms(), report.manifests, report.links, report.blobs, report.bytes)
                await self._sql.record_run(registry.id, run)
        log.info("garbage collection: %s", report.summary())
        return report

    async def last_run(self, registry_id: str) -> GcRun | None:
        return await self._sql.last_run(registry_id)

    async def sweep(self, *, dry_run: bool = False) -> tuple[int, int] | None:
        """Delete blobs no repository links (rows, then bytes); (blobs, bytes) freed, or None if
        another process is sweeping."""
        async with self._engine.try_lock(SWEEP_LOCK) as held:
            if not held:
                return None
            count = size = 0
            after = ""
            while found := await self._sql.unlinked_blobs(after, self._batch):
                after = found[-1].digest
                if dry_run:
                    count += len(found)
                    size += sum(blob.size for blob in found)
                    continue
                await self._hook("blobs-read")
                deleted = await self._sql.delete_blobs(found)
                await self._hook("blob-rows-deleted")
                if self._discard is not None:  # other replicas' copies: unreachable, evicted in time
                    for blob in deleted:
                        await self._discard(blob)
            if dry_run:
                return count, size
            return await self._delete_queued()

    async def reconcile(self, *, older_than: float = RECONCILE_AGE, limit: int = RECONCILE_PAGE) -> int:
        """One bounded page of the reconciling scan: delete objects of the store that no blob
        row, queued deletion or live upload session names and that are older than `older_than`
        seconds (what a crash between a store write and its commit left). The scan goes on from
        where the last page stopped, around and around; returns how many objects it deleted."""
        async with self._engine.try_lock(SWEEP_LOCK) as held:
            if not held:
                return 0
            mark = await self._sql.get_mark("reconcile")
            page = await self._blobs.list_blobs(mark, limit)
            await self._sql.set_mark("reconcile", page[-1][0] if len(page) == limit else "")
            before = time.time() - older_than
            old = [location for location, modified in page if modified < before]
            # sessions first, then rows: an upload committing meanwhile has its session until its
            # row exists, so one of the two checks sees it
            pending = set()
            for location in old:
                for upload_id in _UPLOAD_ID.findall(location):
                    if await self._uploads.get_upload(upload_id) is not None:
                        pending.add(location)
            known = await self._sql.known_locations([location for location in old if location not in pending])
            orphans = [location for location in old if location not in pending and location not in known]
            if orphans:
                await self._blobs.delete_many(orphans)
                log.warning("reconciling scan: deleted %d store objects no metadata knew", len(orphans))
            return len(orphans)

    # -----------------------------------------------------------------------------------------

    async def _index(self, registry_id: str) -> None:
        """Record the references of manifests stored before references were (a migrated
        database), or whose references an explicit DELETE removed: before anything goes."""
        while found := await self._sql.unindexed_manifests(registry_id, self._batch):
            for manifest in found:
                try:
                    parsed = parse_manifest(manifest.content, manifest.media_type)
                    blobs = [str(d.digest) for d in parsed.blobs]
                    children = [str(d.digest) for d in parsed.children]
                except RegistryError:  # stored before today's checks: it references nothing we know
                    blobs, children = [], []
                await self._sql.index_references(manifest, blobs, children)

    async def _untagged(self, registry_id: str, cutoff: int, dry_run: bool) -> int:
        removed = 0
        for _ in range(PASSES):
            in_pass = 0
            after: tuple[int, str] = (0, "")
            while found := await self._sql.untagged_manifests(registry_id, cutoff, after, self._batch):
                after = (found[-1].repository_id, found[-1].digest)
                if dry_run:
                    in_pass += len(found)
                    continue
                await self._hook("manifests-read")
                deleted = await self._sql.delete_manifests(found)
                await self._forget(deleted)
                in_pass += len(deleted)
                await asyncio.sleep(0)
            removed += in_pass
            if dry_run or not in_pass:
                break
        return removed

    async def _forget(self, manifests: list[Candidate]) -> None:
        if self._cache is not None:
            for manifest in manifests:
                await self._cache.drop_manifest(manifest.repository_id, manifest.digest)

    async def _links(self, registry_id: str, cutoff: int, dry_run: bool) -> int:
        removed = 0
        after: tuple[int, str] = (0, "")
        while found := await self._sql.unreferenced_links(registry_id, cutoff, after, self._batch):
            after = (found[-1].repository_id, found[-1].digest)
            if dry_run:
                removed += len(found)
                continue
            await self._hook("links-read")
            removed += len(await self._sql.delete_links(found))
            await asyncio.sleep(0)
        return removed

    async def _delete_queued(self) -> tuple[int, int]:
        """Delete the bytes of queued locations (this run's and any a crash left), then their
        queue rows; a store that fails leaves them queued for the next run."""
        count = size = 0
        while queued := await self._sql.queued_deletions(DELETE_BATCH):
            await self._blobs.delete_many([location for location, _ in queued])
            await self._hook("bytes-deleted")
            await self._sql.forget_deletions([location for location, _ in queued])
            count += len(queued)
            size += sum(bytes_ for _, bytes_ in queued)
        return count, size


def _now_ms() -> int:
    return int(time.time() * 1000)
