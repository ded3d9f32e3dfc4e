"""All tenant registries of a deployment over one set of stores, and how to open them."""

from __future__ import annotations

from pathlib import Path

from .blobs import BlobDriver
from .blobs.filesystem import FilesystemBlobDriver
from .cache import ABSENT, MetadataCache, SingleFlight
from .metadata import MetadataStore, RegistryRecord
from .metadata.sql import SqlMetadataStore
from .metadata.sqlite import SqliteEngine
from .names import is_valid_registry_name
from .registry import Registry
from .uploads import Uploads

DEFAULT_REGISTRY = "default"


class Registries:
    def __init__(self, metadata: MetadataStore, blobs: BlobDriver, cache: MetadataCache) -> None:
        self.metadata = metadata
        self.blobs = blobs
        self.cache = cache
        self._flights = SingleFlight()
        self._uploads = Uploads(metadata, blobs)

    @classmethod
    async def open_embedded(cls, data_dir: Path) -> Registries:
        """The embedded default: SQLite and files under `data_dir`, no other service."""
        engine = await SqliteEngine.open(data_dir / "metadata.db")
        await engine.migrate()
        registries = cls(SqlMetadataStore(engine), FilesystemBlobDriver(data_dir), MetadataCache())
        await registries.ensure(DEFAULT_REGISTRY)
        return registries

    async def ensure(self, name: str) -> RegistryRecord:
        record = await self.metadata.get_registry(name)
        if record is None:
            try:
                record = await self.metadata.create_registry(name)
            except KeyError:  # created concurrently by another process
                record = await self.metadata.get_registry(name)
        assert record is not None
        return record

    async def create(self, name: str) -> RegistryRecord:
        if not is_valid_registry_name(name):
            raise ValueError(
                f"invalid registry name {name!r}: 3-63 characters, lowercase letters, digits "
                "and '-', starting with a letter and not ending with '-'"
            )
        return await self.metadata.create_registry(name)

    async def resolve(self, name: str) -> Registry | None:
        """The registry called `name`, cached briefly so new registries appear within a second."""
        cached = await self.cache.get_registry(name)
        if cached == ABSENT:
            return None
        record = cached
        if record is None:
            record = await self.metadata.get_registry(name)
            await self.cache.set_registry(name, record)
            if record is None:
                return None
        return self.bind(record)  # type: ignore[arg-type]

    def bind(self, record: RegistryRecord) -> Registry:
        return Registry(record, self.metadata, self.blobs, self.cache, self._flights, self._uploads)

    async def close(self) -> None:
        await self.metadata.close()
        await self.blobs.close()
        await self.cache.close()
