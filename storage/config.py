"""Which stores a deployment uses and how to reach them: the storage section of the settings.

Each field says what it means (`description`), whether it is a secret (`SecretStr`) and what it
allows (`Literal`, bounds, validators). The gateway fills the section from its flat settings
(`env_prefix` + field name); messages here name other fields in backticks (`sse`), which the
gateway's settings layer replaces with the names its users set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from .crypto import decode_key

MIB = 1024 * 1024
MIN_PART = 5 * MIB  # S3's smallest part (except the last)
MAX_PART = 5 * 1024 * MIB
UPLOAD_TTL = 7 * 24 * 3600  # as CNCF Distribution's upload purging: a week
MAX_BLOB_SIZE = 100 * 1024**3
CACHE_BYTES = 10 * 1024**3
SPILL_BYTES = 2 * 1024**3
LINGER_BYTES = 128 * MIB
GC_GRACE = 24 * 3600

# frozen, strict about unknown names, and never echoing a rejected value (keys, passwords)
SECTION = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


def _check_key(value: SecretStr | None) -> SecretStr | None:
    if value is not None:
        try:
            decode_key(value.get_secret_value(), "key")
        except ValueError:
            raise ValueError("must be base64 of 32 bytes") from None  # never shows the key
    return value


Key = Annotated[SecretStr | None, AfterValidator(_check_key)]  # base64 of 32 bytes


class S3Config(BaseModel):
    """An S3-compatible object store for blobs (used when `blob_store` is s3)."""

    model_config = SECTION
    env_prefix: ClassVar[str] = "s3_"

    endpoint_url: str | None = Field(
        None, description="S3 endpoint, e.g. http://127.0.0.1:7480 (AWS if unset)"
    )
    bucket: str = Field("ocigate", description="S3 bucket for blobs")
    region: str | None = Field(None, description="S3 region")
    sse: Literal["none", "AES256", "aws:kms", "sse-c"] = Field("none", description="server-side encryption")
    sse_kms_key_id: str | None = Field(None, description="KMS key id for aws:kms")
    sse_c_key: Key = Field(None, description="SSE-C customer key, base64 of 32 bytes")
    sse_c_key_file: Path | None = Field(None, description="file holding the SSE-C customer key")
    addressing_style: Literal["auto", "path", "virtual"] = Field(
        "auto", description="how requests name the bucket: in the path or the host name"
    )
    part_size: int = Field(
        16 * MIB,
        description="multipart part size in bytes (at least 5 MiB); memory per upload is about one part",
    )
    pool_size: int = Field(64, ge=1, description="maximum S3 connections")
    redirect: bool = Field(
        False, description="answer blob GETs with a 307 to a presigned URL (not with sse-c)"
    )
    timeout: float = Field(
        10.0,
        gt=0,
        description="seconds S3 may keep a request waiting for data before it counts as failed (then 503)",
    )

    @field_validator("part_size")
    @classmethod
    def _part_size(cls, value: int) -> int:
        if not MIN_PART <= value <= MAX_PART:
            raise ValueError("must be between 5 MiB and 5 GiB (5242880 and 5368709120)")
        return value

    @model_validator(mode="after")
    def _sse_c(self) -> S3Config:
        if self.sse != "sse-c":
            return self
        if self.sse_c_key is None and self.sse_c_key_file is None:
            raise ValueError("`sse`=sse-c needs `sse_c_key` or `sse_c_key_file`")
        if self.redirect:
            raise ValueError("`redirect` cannot work with `sse`=sse-c: clients do not hold the key")
        return self


class UploadConfig(BaseModel):
    """How long upload sessions may sit idle before they expire and what they staged is deleted."""

    model_config = SECTION
    env_prefix: ClassVar[str] = "upload_"

    ttl: int = Field(
        UPLOAD_TTL,
        ge=1,
        description="seconds an upload session may sit idle before it expires and its staged bytes "
        "are deleted",
    )
    pressure_ttl: int = Field(
        3600, ge=1, description="seconds an upload session may sit idle while the disk is short of space"
    )


class EdgeCacheConfig(BaseModel):
    """The edge cache: blobs read from S3 kept on the replica's own disk, encrypted
    (storage/blobs/edge_cache.py)."""

    model_config = SECTION
    env_prefix: ClassVar[str] = "cache_"

    dir: Path | None = Field(
        None,
        description="directory of the edge cache of blobs read from S3, encrypted, shared by the "
        "workers (off if unset)",
    )
    bytes: int = Field(
        CACHE_BYTES, ge=1, description="most bytes the edge cache holds; least recently used blobs go first"
    )
    spill_bytes: int = Field(
        SPILL_BYTES,
        ge=0,
        description="most bytes a process keeps at once in spill files, where readers of a shared S3 "
        "read that fall behind follow it (in the cache directory, else TMPDIR: a disk, not tmpfs); past "
        "it they read S3 on their own; 0: no spills",
    )
    linger_bytes: int = Field(
        LINGER_BYTES,
        ge=0,
        description="most bytes a process keeps in memory of blobs of up to 16 MiB whose shared S3 read "
        "ended, for 10 s after their last reader, for the reads that come soon after (a rollout's later "
        "nodes); oldest first; 0: none",
    )


class GcConfig(BaseModel):
    """Garbage collection (storage/collector.py): what a collection may remove, and when."""

    model_config = SECTION
    env_prefix: ClassVar[str] = "gc_"

    grace: int = Field(
        GC_GRACE,
        ge=0,
        description="seconds a blob link must be unreferenced (and an untagged manifest unpushed) before "
        "garbage collection removes it; covers a push between its layers and its manifest",
    )


class StorageConfig(BaseModel):
    """The stores: metadata (SQLite in the data dir, or PostgreSQL) and blobs (encrypted files in
    the data dir, or S3)."""

    model_config = SECTION
    env_prefix: ClassVar[str] = ""

    data_dir: Path = Field(
        Path("data"), description="directory of the embedded default's metadata (SQLite), blobs and keys"
    )
    metadata_url: SecretStr | None = Field(
        None,
        description="postgresql://user:pass@host/db for shared metadata; SQLite in the data dir if unset",
    )
    blob_store: Literal["filesystem", "s3"] = Field(
        "filesystem", description="where blobs live: in the data dir (encrypted), or in S3"
    )
    encryption_key: Key = Field(
        None, description="filesystem blob key, base64 of 32 bytes (generated into the data dir if unset)"
    )
    encryption_key_file: Path | None = Field(None, description="file holding the filesystem blob key")
    max_blob_size: int = Field(
        MAX_BLOB_SIZE,
        ge=1,
        description="largest blob accepted, bytes (an S3 store's own limit, 10,000 parts, may be lower)",
    )
    min_free_space: float = Field(
        0.05,
        ge=0,
        le=1,
        description="fraction of the blob disk free below which it is short of space (filesystem store)",
    )
    # sections are frozen, so one default instance can serve every tree
    uploads: UploadConfig = UploadConfig()
    gc: GcConfig = GcConfig()
    s3: S3Config = S3Config()
    cache: EdgeCacheConfig = EdgeCacheConfig()

    @field_validator("metadata_url")
    @classmethod
    def _metadata_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(
            ("sqlite:", "postgresql://", "postgres://")
        ):
            raise ValueError("must be sqlite:///path or postgresql://…")
        return value

    @model_validator(mode="after")
    def _one_key(self) -> StorageConfig:
        if self.encryption_key is not None and self.encryption_key_file is not None:
            raise ValueError("set either `encryption_key` or `encryption_key_file`, not both")
        return self
