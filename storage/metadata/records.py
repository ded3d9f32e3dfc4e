"""The records the metadata stores speak in (`contracts.py` says which store takes which)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RegistryRecord:
    id: str
    name: str
    created_at: int
    account_id: str | None = None
    properties: str = "{}"  # JSON: location, garbageCollectionSchedule, apiSubnetAllowList, features


@dataclass(frozen=True, slots=True)
class BlobRecord:
    digest: str
    size: int
    location: str


@dataclass(frozen=True, slots=True)
class ManifestRecord:
    digest: str
    media_type: str
    content: bytes
    subject: str | None = None
    artifact_type: str | None = None
    annotations: bytes | None = None  # JSON object, kept for the referrers API

    @property
    def size(self) -> int:
        return len(self.content)


@dataclass(frozen=True, slots=True)
class ReferrerRecord:
    digest: str
    media_type: str
    size: int
    artifact_type: str | None
    annotations: bytes | None


@dataclass(frozen=True, slots=True)
class UploadRecord:
    id: str
    registry_id: str
    repository: str
    offset: int
    hash_state: bytes
    driver_state: bytes  # JSON
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class RepositoryUsage:
    """A repository as the management API lists it: content and usage counters."""

    name: str
    created_at: int
    artifact_count: int
    pull_count: int
    push_count: int
    last_pull_at: int | None
    last_push_at: int | None


@dataclass(frozen=True, slots=True)
class ArtifactRecord:
    """A stored manifest with the tags on it."""

    digest: str
    media_type: str
    content: bytes
    artifact_type: str | None
    created_at: int
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ClearedRepository:
    """What `clear_repository` removed, so that callers can drop it from caches."""

    repository_id: int
    digests: tuple[str, ...]
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NameFilter:
    """Which repositories a listing shows: these names, and every name starting with one of
    these prefixes (`team/`). Nothing when both are empty."""

    names: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()


class TokenSpent(Exception):
    """A one-time token already wrote its tag."""
