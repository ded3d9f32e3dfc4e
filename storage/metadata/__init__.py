"""Metadata stores: what exists, where, and who may see it.

One SQL database (SQLite or PostgreSQL, `engine.py`) holds four aggregates, each a module of
its own over the shared engine: registries (`registries.py`), content (`content/`:
repositories, blobs and their links, manifests, tags), upload sessions (`uploads.py`) and the
management API's read models (`views.py`). Consumers depend on the protocols of what they use
(`contracts.py`); `MetadataStore` holds one store of each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..health import StoreHealth
from .content import SqlContent
from .contracts import ContentStore, ManagementViews, RegistryStore, UploadSessions
from .engine import SqlEngine
from .records import BlobRecord, ManifestRecord, NameFilter, ReferrerRecord, RegistryRecord, UploadRecord
from .registries import SqlRegistries
from .uploads import SqlUploads
from .views import SqlViews

if TYPE_CHECKING:
    from ..config import StorageConfig

__all__ = [
    "BlobRecord",
    "ManifestRecord",
    "MetadataStore",
    "NameFilter",
    "ReferrerRecord",
    "RegistryRecord",
    "UploadRecord",
    "open_metadata",
]


@dataclass(frozen=True, slots=True)
class MetadataStore:
    """The stores of one metadata database, one per aggregate, sharing its engine (and so its
    connections and its health: a database that is down is down for all of them)."""

    engine: SqlEngine
    registries: RegistryStore
    content: ContentStore
    uploads: UploadSessions
    views: ManagementViews

    @classmethod
    def over(cls, engine: SqlEngine) -> MetadataStore:
        """The SQL stores on `engine` (migrated already)."""
        return cls(engine, SqlRegistries(engine), SqlContent(engine), SqlUploads(engine), SqlViews(engine))

    @property
    def health(self) -> StoreHealth:
        return self.engine.health

    async def close(self) -> None:
        await self.engine.close()


async def open_metadata(config: StorageConfig) -> MetadataStore:
    """The store `config.metadata_url` names (SQLite in the data dir if unset), migrated."""
    url = config.metadata_url.get_secret_value() if config.metadata_url else None
    engine: SqlEngine
    if url is None or url.startswith("sqlite:"):
        from pathlib import Path

        from ..private import private_dir
        from .sqlite import SqliteEngine

        path = Path(url.removeprefix("sqlite://")) if url else private_dir(config.data_dir) / "metadata.db"
        engine = await SqliteEngine.open(path)
    elif url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresEngine

        engine = await PostgresEngine.open(url)
    else:
        raise ValueError("the metadata URL must be sqlite:///path or postgresql://…")
    try:
        await engine.migrate()
    except BaseException:
        await engine.close()
        raise
    return MetadataStore.over(engine)
