"""Blob drivers: where the bytes of layers and configs live."""

from .base import BlobDriver, ByteChunks

__all__ = ["BlobDriver", "ByteChunks"]
