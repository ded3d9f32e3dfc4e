"""Which stores a deployment uses and how to reach them (filled from `OCIGATE_*` settings)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

MIB = 1024 * 1024
UPLOAD_TTL = 7 * 24 * 3600  # as CNCF Distribution's upload purging: a week
MAX_BLOB_SIZE = 100 * 1024**3
CACHE_BYTES = 10 * 1024**3


@dataclass(frozen=True)
class StorageConfig:
    data_dir: Path
    # metadata: SQLite under data_dir unless a postgresql:// URL is given
    metadata_url: str | None = field(default=None, repr=False)  # secret
    # blobs: "filesystem" (under data_dir, AES-256-GCM) or "s3"
    blob_store: str = "filesystem"
    # filesystem encryption key: base64 of 32 bytes, or a file holding it; generated on first start
    encryption_key: str | None = field(default=None, repr=False)  # secret
    encryption_key_file: Path | None = None
    # S3-compatible object storage
    s3_endpoint_url: str | None = None
    s3_bucket: str = "ocigate"
    s3_region: str | None = None
    s3_sse: str = "none"  # none | AES256 | aws:kms | sse-c
    s3_sse_kms_key_id: str | None = None
    s3_sse_c_key: str | None = field(default=None, repr=False)  # secret: base64 of 32 bytes
    s3_sse_c_key_file: Path | None = None
    s3_addressing_style: str = "auto"  # auto | path | virtual
    s3_part_size: int = 16 * MIB
    s3_pool_size: int = 64
    s3_redirect: bool = False
    s3_timeout: float = 10.0  # a silent store fails a request after this long, not a minute
    # upload sessions idle this long (seconds) are gone, and what they staged is deleted
    upload_ttl: int = UPLOAD_TTL
    # a blob (an upload, declared or counted) larger than this is refused with 413
    max_blob_size: int = MAX_BLOB_SIZE
    # shared cache for replicas (manifests, tags); in-process memory when unset
    redis_url: str | None = None
    # the edge cache of blobs read from a remote store (storage/blobs/edge_cache.py); off if unset
    cache_dir: Path | None = None
    cache_bytes: int = CACHE_BYTES
