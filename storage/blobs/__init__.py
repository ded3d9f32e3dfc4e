"""Blob drivers: where the bytes of layers and configs live."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import BlobDriver, ByteChunks

if TYPE_CHECKING:
    from ..config import StorageConfig

__all__ = ["BlobDriver", "ByteChunks", "open_blob_driver"]


async def open_blob_driver(config: StorageConfig) -> BlobDriver:
    """The driver `config.blob_store` names, checked to work (or an error that says why)."""
    if config.blob_store == "filesystem":
        from .filesystem import FilesystemBlobDriver

        return FilesystemBlobDriver(config.data_dir)
    raise ValueError(f"unknown blob store {config.blob_store!r} (expected filesystem or s3)")
