"""All tenant registries of a deployment over one set of stores, and how to open them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

from .blobs import BlobDriver, open_blob_driver
from .cache import ABSENT, MetadataCache, SingleFlight
from .collector import Collector, Hook
from .config import MAX_BLOB_SIZE, UPLOAD_TTL, StorageConfig
from .health import StoreHealth, render
from .metadata import MetadataStore, RegistryRecord, open_metadata
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
    ) -> None:
        self.metadata = metadata
        self.blobs = blobs
        self.cache = cache
        self._flights = SingleFlight()
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
        registries = cls(metadata, blobs, cache, config.uploads.ttl, config.max_blob_size)
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
        record = await self.metadata.registries.get_registry(name)
        await self.cache.set_registry(name, record)
        return None if record is None else self.bind(record)

    def bind(self, record: RegistryRecord) -> Registry:
        return Registry(record, self.metadata.content, self.blobs, self.cache, self._flights, self._uploads)

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
        return Collector(self.metadata, self.blobs, self.cache, hook=hook)

    @property
    def health(self) -> list[StoreHealth]:
        """Each store's, the cache's when it is shared (Redis)."""
        stores = [self.metadata.health, self.blobs.health]
        return stores if self.cache.health is None else [*stores, self.cache.health]

    def metrics_text(self) -> str:
        """The stores' part of `/metrics`."""
        return render(self.health)

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

    async def close(self) -> None:
        await self.metadata.close()
        await self.blobs.close()
        await self.cache.close()


async def _open_cache(redis_url: str | None) -> MetadataCache:
    """In-process memory, or Redis when replicas must see each other's tag moves and deletes."""
    if redis_url is None:
        return MetadataCache()
    from .cache_redis import open_redis_cache

    return await open_redis_cache(redis_url)
