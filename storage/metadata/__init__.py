"""Metadata stores: what exists, where, and who may see it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import (
    BlobRecord,
    ManifestRecord,
    MetadataStore,
    ReferrerRecord,
    RegistryRecord,
    UploadRecord,
)

if TYPE_CHECKING:
    from ..config import StorageConfig

__all__ = [
    "BlobRecord",
    "ManifestRecord",
    "MetadataStore",
    "ReferrerRecord",
    "RegistryRecord",
    "UploadRecord",
    "open_metadata",
]


async def open_metadata(config: StorageConfig) -> MetadataStore:
    """The store `config.metadata_url` names (SQLite in the data dir if unset), migrated."""
    from .engine import SqlEngine
    from .sql import SqlMetadataStore

    engine: SqlEngine

    url = config.metadata_url
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
        raise ValueError("OCIGATE_METADATA_URL must be sqlite:///path or postgresql://…")
    try:
        await engine.migrate()
    except BaseException:
        await engine.close()
        raise
    return SqlMetadataStore(engine)
