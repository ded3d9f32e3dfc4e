"""The metadata store interface and the records it speaks in.

One implementation (`sql.SqlMetadataStore`) covers every SQL engine: the engines differ only
in how they connect, run a statement and hold a transaction (`engine.py`). Every method is one
domain step and atomic on its own; the domain never holds a transaction across I/O to a blob
driver or a client.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from ..health import StoreHealth


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
    size: int = 0  # bytes of its linked blobs and its manifests


@dataclass(frozen=True, slots=True)
class ArtifactRecord:
    """A stored manifest with the tags on it."""

    digest: str
    media_type: str
    content: bytes
    artifact_type: str | None
    created_at: int
    tags: tuple[str, ...]
    pushed_at: int | None = None  # the latest of its creation and its tags' last pushes


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


class MetadataStore(ABC):
    """Reads take a repository id (resolve it first; None means "not there"); writes name the
    repository, because they create it on first use. A store that is down or full raises
    StorageUnavailable or StorageFull, and says so in `health`."""

    health: StoreHealth

    # registries
    @abstractmethod
    async def create_registry(
        self, name: str, account_id: str | None = None, properties: str = "{}"
    ) -> RegistryRecord: ...
    @abstractmethod
    async def get_registry(self, name: str) -> RegistryRecord | None: ...
    @abstractmethod
    async def get_registry_by_id(self, registry_id: str) -> RegistryRecord | None: ...
    @abstractmethod
    async def list_registries(self) -> list[RegistryRecord]: ...
    @abstractmethod
    async def delete_registry(self, name: str) -> bool: ...
    @abstractmethod
    async def update_registry(self, registry_id: str, properties: str) -> RegistryRecord | None: ...

    # repositories
    @abstractmethod
    async def get_repository_id(self, registry_id: str, name: str) -> int | None: ...
    @abstractmethod
    async def list_repositories(
        self, registry_id: str, last: str, limit: int, only: NameFilter | None = None
    ) -> list[str]:
        """Names after `last`, in order, at most `limit`; with `only`, those it lets through."""

    # blobs, reachable only through a repository's links
    @abstractmethod
    async def get_linked_blob(self, repository_id: int, digest: str) -> BlobRecord | None: ...
    @abstractmethod
    async def get_blob(self, digest: str) -> BlobRecord | None: ...
    @abstractmethod
    async def add_blob(self, registry_id: str, repository: str, blob: BlobRecord) -> BlobRecord:
        """Record a blob (unless one with the digest exists) and link it; returns the stored one."""

    @abstractmethod
    async def link_blob(self, registry_id: str, repository: str, digest: str) -> None: ...
    @abstractmethod
    async def unlink_blob(self, repository_id: int, digest: str) -> bool: ...
    @abstractmethod
    async def missing_blobs(self, repository_id: int, digests: list[str]) -> list[str]: ...

    # manifests and tags
    @abstractmethod
    async def get_manifest(self, repository_id: int, digest: str) -> ManifestRecord | None: ...
    @abstractmethod
    async def get_tag(self, repository_id: int, tag: str) -> str | None: ...
    @abstractmethod
    async def missing_manifests(self, repository_id: int, digests: list[str]) -> list[str]: ...
    @abstractmethod
    async def put_manifest(
        self,
        registry_id: str,
        repository: str,
        manifest: ManifestRecord,
        tag: str | None,
        one_time_token: str | None = None,
    ) -> None:
        """Store the manifest (idempotent) and point `tag` at it, in one transaction.

        With `one_time_token`, writing the tag also spends that token, in the same transaction;
        if it was already spent, nothing is written and `TokenSpent` is raised."""

    @abstractmethod
    async def delete_manifest(self, repository_id: int, digest: str) -> list[str]:
        """Delete a manifest and the tags on it; returns those tags, or raises KeyError."""

    @abstractmethod
    async def delete_tag(self, repository_id: int, tag: str) -> bool: ...
    @abstractmethod
    async def list_tags(self, repository_id: int, last: str, limit: int) -> list[str]: ...
    @abstractmethod
    async def list_referrers(
        self, repository_id: int, subject: str, artifact_type: str | None
    ) -> list[ReferrerRecord]: ...

    # upload sessions
    @abstractmethod
    async def create_upload(self, upload: UploadRecord) -> None: ...
    @abstractmethod
    async def get_upload(self, upload_id: str) -> UploadRecord | None: ...
    @abstractmethod
    async def advance_upload(
        self,
        upload_id: str,
        expected_offset: int,
        offset: int,
        hash_state: bytes,
        driver_state: bytes,
        now: int,
    ) -> bool:
        """Move an upload forward if nobody else did since `expected_offset` (compare-and-set)."""

    @abstractmethod
    async def delete_upload(self, upload_id: str) -> bool: ...
    @abstractmethod
    async def registry_uploads(self, registry_id: str) -> list[UploadRecord]: ...
    @abstractmethod
    async def idle_uploads(self, before: int, limit: int) -> list[UploadRecord]:
        """Up to `limit` upload sessions last advanced before `before` (ms), oldest first."""

    # management views: account listings, usage and content summaries
    @abstractmethod
    async def list_account_registries(
        self, account_id: str, offset: int, limit: int
    ) -> list[RegistryRecord]: ...
    @abstractmethod
    async def count_account_registries(self, account_id: str) -> int: ...
    @abstractmethod
    async def registry_storage_bytes(self, registry_id: str) -> int:
        """Bytes of the blobs linked in the registry's repositories, each blob counted once."""

    @abstractmethod
    async def list_repository_usage(
        self, registry_id: str, after: str, limit: int, prefix: str = ""
    ) -> list[RepositoryUsage]:
        """Repositories with content (a manifest or a blob link) whose name starts with
        `prefix`, by name after `after`."""

    @abstractmethod
    async def count_repositories_with_content(self, registry_id: str, prefix: str = "") -> int: ...
    @abstractmethod
    async def count_repositories_of(self, registry_ids: list[str]) -> dict[str, int]:
        """`count_repositories_with_content` of several registries at once (a page of a list)."""

    @abstractmethod
    async def get_repository_usage(self, registry_id: str, name: str) -> RepositoryUsage | None: ...
    @abstractmethod
    async def add_repository_usage(
        self, registry_id: str, name: str, pulls: int, pushes: int, last_pull_at: int, last_push_at: int
    ) -> None:
        """Add to the counters; a `last_*_at` of 0 leaves that time as it is."""

    @abstractmethod
    async def clear_repository(self, registry_id: str, name: str) -> ClearedRepository | None:
        """Delete every manifest, tag, blob link and upload of a repository (its row stays, so
        that repository ids cached by other processes stay valid); None if it had no content."""

    @abstractmethod
    async def list_artifacts(self, repository_id: int, after: str, limit: int) -> list[ArtifactRecord]: ...
    @abstractmethod
    async def count_artifacts(self, repository_id: int) -> int: ...
    @abstractmethod
    async def get_artifact(self, repository_id: int, digest: str) -> ArtifactRecord | None: ...

    @abstractmethod
    async def referrers_by_subject(
        self, repository_id: int, subjects: list[str]
    ) -> dict[str, list[ReferrerRecord]]:
        """The manifests whose subject is one of `subjects` (signatures, SBOMs), by subject."""

    @abstractmethod
    async def close(self) -> None: ...


class TokenSpent(Exception):
    """A one-time token already wrote its tag."""
