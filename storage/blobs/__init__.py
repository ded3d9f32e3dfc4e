"""Blob drivers: where the bytes of layers and configs live."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from .base import BlobDriver, ByteChunks, Piece, ReadChunks, SocketStretch

if TYPE_CHECKING:
    from ..config import StorageConfig

__all__ = ["BlobDriver", "ByteChunks", "Piece", "ReadChunks", "SocketStretch", "blob_key", "open_blob_driver"]


async def open_blob_driver(config: StorageConfig) -> BlobDriver:
    """The driver `config.blob_store` names, checked to work (or an error that says why)."""
    if config.blob_store == "filesystem":
        from .filesystem import FilesystemBlobDriver

        return FilesystemBlobDriver(config.data_dir, await blob_key(config))
    if config.blob_store == "s3":
        from .s3 import S3BlobDriver

        return await S3BlobDriver.open(config.s3)
    raise ValueError(f"unknown blob store {config.blob_store!r} (expected filesystem or s3)")


async def blob_key(config: StorageConfig) -> bytes:
    """The key of the filesystem store's files and of the edge cache's (which derives its own)."""
    from ..crypto import load_blob_key

    generated = config.data_dir / "keys" / "blob.key"
    text = config.encryption_key.get_secret_value() if config.encryption_key else None
    return await asyncio.to_thread(load_blob_key, text, config.encryption_key_file, generated)
