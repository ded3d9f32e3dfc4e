"""All tenant registries of a deployment over one set of stores, and how to open them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

from .blobs import BlobDriver, open_blob_driver
from .blobs.reads import BlobReads
from .cache import ABSENT, MetadataCache, SingleFlight
from .collector import Collector, Hook
from .config import MAX_BLOB_SIZE, UPLOAD_TTL, StorageConfig
from .health import StoreHealth
from .metadata import BlobRecord, MetadataStore, RegistryRecord, open_metadata
from .names import is_valid_registry_name
from .registry import Registry
from .uploads import Uploads

DEFAULT_REGISTRY = "default"


class Registries:
    def __init__(
        self,
        metadata: MetadataStore,
        blobs: BlobDriver,
        cache: MetadataCache,
        upload_ttl: int = UPLOAD_TTL,
        max_blob_size: int = MAX_BLOB_SIZE,
        reads: BlobReads | None = None,
    ) -> None:
        self.metadata = metadata
        self.blobs = blobs
        self.reads = reads or BlobReads(blobs)  # the edge cache and shared reads of remote stores
        self.cache = cache
        self._flights = SingleFlight()
        self._bound: dict[RegistryRecord, Registry] = {}
        self._uploads = Uploads(metadata.uploads, metadata.content, blobs, upload_ttl, max_blob_size)

    @classmethod
    async def open(cls, config: StorageConfig, redis_url: str | None = None) -> Registries:
        """The stores `config` names; the embedded default is SQLite and files in the data dir.
        With `redis_url`, the cache is shared with other replicas there."""
        metadata = await open_metadata(config)
        try:
            blobs = await open_blob_driver(config)
        except BaseException:
            await metadata.close()
            raise
        try:
            cache = await _open_cache(redis_url)
        except BaseException:
            await metadata.close()
            await blobs.close()
            raise
        try:
            reads = await BlobReads.open(blobs, config)
        except BaseException:
            await metadata.close()
            await blobs.close()
            await cache.close()
            raise
        registries = cls(metadata, blobs, cache, config.uploads.ttl, config.max_blob_size, reads)
        await registries.ensure(DEFAULT_REGISTRY)
        return registries

    async def ensure(self, name: str) -> RegistryRecord:
        record = await self.metadata.registries.get_registry(name)
        if record is None:
            try:
                record = await self.metadata.registries.create_registry(name)
            except KeyError:  # created concurrently by another process
                record = await self.metadata.registries.get_registry(name)
        assert record is not None
        return record

    async def create(self, name: str, account_id: str | None = None) -> RegistryRecord:
        if not is_valid_registry_name(name):
            raise ValueError(
                f"invalid registry name {name!r}: 3-63 characters, lowercase letters, digits "
                "and '-', starting with a letter and not ending with '-'"
            )
        return await self.metadata.registries.create_registry(name, account_id)

    async def resolve(self, name: str) -> Registry | None:
        """The registry called `name`, cached briefly so new registries appear within a second."""
        cached = await self.cache.get_registry(name)
        if isinstance(cached, RegistryRecord):
            return self.bind(cached)
        if cached == ABSENT:
            return None
        # every request of the moment the entry expired misses: one query for all of them
        record = await self._flights.do(("r", name), partial(self._load_registry, name))
        return None if record is None else self.bind(record)

    async def _load_registry(self, name: str) -> RegistryRecord | None:
        record = await self.metadata.registries.get_registry(name)
        await self.cache.set_registry(name, record)
        return record

    def bind(self, record: RegistryRecord) -> Registry:
        """The registry of `record`; one object per record (its fields are its key: a changed
        record gets a new one), not one per request."""
        registry = self._bound.get(record)
        if registry is None:
            if len(self._bound) >= 1024:
                self._bound.clear()
            content, flights = self.metadata.content, self._flights
            registry = Registry(record, content, self.blobs, self.cache, flights, self._uploads, self.reads)
            self._bound[record] = registry
        return registry

    async def delete(self, name: str) -> bool:
        """Delete a registry and everything in it (ON DELETE CASCADE), what its unfinished
        uploads staged included; blob bytes, which other registries may share, stay."""
        record = await self.metadata.registries.get_registry(name)
        if record is None:
            return False
        await self._uploads.discard_all(record.id)
        deleted = await self.metadata.registries.delete_registry(name)
        await self.cache.set_registry(name, None)
        return deleted

    def collector(self, hook: Hook | None = None) -> Collector:
        """The garbage collector over these stores (storage/collector.py)."""
        return Collector(self.metadata, self.blobs, self.cache, hook=hook, discard=self.discard_cached_blob)

    @property
    def health(self) -> list[StoreHealth]:
        """Each store's, the cache's when it is shared (Redis)."""
        stores = [self.metadata.health, self.blobs.health]
        if self.cache.health is not None:
            stores.append(self.cache.health)
        if self.reads.cache is not None:
            stores.append(self.reads.cache.health)
        return stores

    async def check(self) -> dict[str, str]:
        """For /readyz: "ok" or why not, for the metadata store and the blob store."""
        checks: dict[str, Callable[[], Awaitable[object]]] = {
            "metadata": partial(self.metadata.registries.get_registry, DEFAULT_REGISTRY),
            "blobs": self.blobs.check,
        }
        results: dict[str, str] = {}
        for store, check in checks.items():
            try:
                await check()
            except Exception as exc:
                results[store] = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            else:
                results[store] = "ok"
        return results

    async def expire_uploads(self, idle_seconds: float | None = None) -> int:
        """Delete upload sessions idle for `idle_seconds` (past their time to live if None),
        with what they staged."""
        return await self._uploads.expire(idle_seconds)

    async def reap_orphaned_staging(self) -> int:
        """Delete staged bytes of upload sessions that no longer exist."""
        return await self._uploads.reap_orphans()

    async def under_space_pressure(self, min_free: float) -> bool:
        """Whether the blob store's disk has less than `min_free` (a fraction) left."""
        free = await self.blobs.free_space()
        return free is not None and free < min_free

    async def discard_cached_blob(self, blob: BlobRecord) -> None:
        """Remove a blob's bytes from this replica's edge cache at once: garbage collection calls
        this when it deletes them from the store (other replicas never serve them again either:
        every read checks the blob's row first, and a new upload of the digest gets a new
        location, which names a new cache entry)."""
        await self.reads.discard(blob.location, blob.digest)

    async def close(self) -> None:
        await self.metadata.close()
        await self.reads.close()
        await self.blobs.close()
        await self.cache.close()


async def _open_cache(redis_url: str | None) -> MetadataCache:
    """In-process memory, or Redis when replicas must see each other's tag moves and deletes."""
    if redis_url is None:
        return MetadataCache()
    from .cache_redis import open_redis_cache

    return await open_redis_cache(redis_url)
