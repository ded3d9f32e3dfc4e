"""Metadata stores: what exists, where, and who may see it."""

from .base import (
    BlobRecord,
    ManifestRecord,
    MetadataStore,
    ReferrerRecord,
    RegistryRecord,
    UploadRecord,
)

__all__ = [
    "BlobRecord",
    "ManifestRecord",
    "MetadataStore",
    "ReferrerRecord",
    "RegistryRecord",
    "UploadRecord",
]
