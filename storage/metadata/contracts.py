"""What each consumer asks of the metadata stores, one small protocol per need.

As CNCF Distribution composes `BlobStatter`, `BlobProvider` and `BlobIngester` into
`BlobStore`, a consumer names the protocol of what it uses: a tenant registry serves from
`RepositoryContent`, upload sessions keep themselves in `UploadSessions` and record their
blobs through a `BlobIngester`, the usage counters write through a `UsageRecorder`, and the
management API reads `ManagementViews`. The SQL stores (one module per aggregate, over one
`SqlEngine`) implement them; `MetadataStore` (`__init__.py`) holds one of each.

Reads take a repository id (resolve it first; None means "not there"); writes name the
repository, because they create it on first use. Every method is one domain step and atomic
on its own; none holds a transaction across I/O to a blob driver or a client. A database that
is down or full raises StorageUnavailable or StorageFull.
"""

from __future__ import annotations

from typing import Protocol

from .records import (
    ArtifactRecord,
    BlobRecord,
    ClearedRepository,
    ManifestRecord,
    NameFilter,
    ReferrerRecord,
    RegistryRecord,
    RepositoryUsage,
    UploadRecord,
)

# registries -------------------------------------------------------------------------------


class RegistryStore(Protocol):
    """Tenant registries: names are global (each is a hostname), ids stable."""

    async def create_registry(
        self, name: str, account_id: str | None = None, properties: str = "{}"
    ) -> RegistryRecord:
        """A new registry; KeyError if the name is taken."""

    async def get_registry(self, name: str) -> RegistryRecord | None: ...
    async def get_registry_by_id(self, registry_id: str) -> RegistryRecord | None: ...
    async def list_registries(self) -> list[RegistryRecord]: ...
    async def update_registry(self, registry_id: str, properties: str) -> RegistryRecord | None: ...
    async def delete_registry(self, name: str) -> bool:
        """Delete a registry with everything in it (its upload sessions too)."""

    async def list_account_registries(
        self, account_id: str, offset: int, limit: int
    ) -> list[RegistryRecord]: ...
    async def count_account_registries(self, account_id: str) -> int: ...


# content: repositories, blobs linked into them, manifests, tags ---------------------------


class Repositories(Protocol):
    async def get_repository_id(self, registry_id: str, name: str) -> int | None: ...
    async def list_repositories(
        self, registry_id: str, last: str, limit: int, only: NameFilter | None = None
    ) -> list[str]:
        """Names of repositories with content after `last`, in bytewise order, at most
        `limit`; with `only`, those it lets through."""


class LinkedBlobs(Protocol):
    """A repository's view of the blobs: only those linked into it (Distribution's
    linkedBlobStore), so that nothing of one repository is reachable from another."""

    async def get_linked_blob(self, repository_id: int, digest: str) -> BlobRecord | None: ...
    async def link_blob(self, registry_id: str, repository: str, digest: str) -> bool:
        """Link (or re-link) a stored blob; False if no blob of that digest is stored (any more)."""

    async def unlink_blob(self, repository_id: int, digest: str) -> bool: ...
    async def missing_blobs(self, repository_id: int, digests: list[str]) -> list[str]:
        """Those of `digests` not linked into the repository, sorted, each once."""

    async def stored_bytes(self, registry_id: str) -> int:
        """Bytes of the blobs linked in the registry's repositories, each blob counted once."""

    async def registry_has_blob(self, registry_id: str, digest: str) -> bool:
        """Whether a repository of the registry links the blob (then it adds nothing to usage)."""


class BlobIngester(Protocol):
    """Recording a blob whose bytes a driver has just committed."""

    async def get_blob(self, digest: str) -> BlobRecord | None:
        """The stored blob of that digest in any repository (only to store its bytes once)."""

    async def add_blob(self, registry_id: str, repository: str, blob: BlobRecord) -> BlobRecord:
        """Record a blob (unless one with the digest exists) and link it; returns the stored one."""

    async def link_existing_blob(self, registry_id: str, repository: str, digest: str) -> BlobRecord | None:
        """Link the stored blob of that digest; None if there is none (or it is being collected),
        so that the caller stores its own copy. Never records a blob row itself."""


class Manifests(Protocol):
    async def get_manifest(self, repository_id: int, digest: str) -> ManifestRecord | None: ...
    async def missing_manifests(self, repository_id: int, digests: list[str]) -> list[str]: ...
    async def put_manifest(
        self,
        registry_id: str,
        repository: str,
        manifest: ManifestRecord,
        tag: str | None,
        one_time_token: str | None = None,
        *,
        blobs: tuple[str, ...] = (),
        children: tuple[str, ...] = (),
    ) -> None:
        """Store the manifest (idempotent) with the blobs and child manifests it references,
        and point `tag` at it, in one transaction. ReferenceMissing (nothing written) if one of
        them is not in the repository (e.g. collected since it was checked).

        With `one_time_token`, writing the tag also spends that token, in the same transaction;
        if it was already spent, nothing is written and `TokenSpent` is raised."""

    async def delete_manifest(self, repository_id: int, digest: str) -> list[str]:
        """Delete a manifest and the tags on it; returns those tags, or raises KeyError."""

    async def list_referrers(
        self, repository_id: int, subject: str, artifact_type: str | None
    ) -> list[ReferrerRecord]: ...


class Tags(Protocol):
    async def get_tag(self, repository_id: int, tag: str) -> str | None: ...
    async def delete_tag(self, repository_id: int, tag: str) -> bool: ...
    async def list_tags(self, repository_id: int, last: str, limit: int) -> list[str]: ...


class RepositoryContent(Repositories, LinkedBlobs, Manifests, Tags, Protocol):
    """What a tenant registry serves its repositories from (`storage/registry.py`)."""


class ContentStore(RepositoryContent, BlobIngester, Protocol):
    """The whole content aggregate."""

    async def clear_repository(self, registry_id: str, name: str) -> ClearedRepository | None:
        """Delete every manifest, tag, blob link and upload of a repository (its row stays, so
        that repository ids cached by other processes stay valid); None if it had no content."""


# upload sessions ---------------------------------------------------------------------------


class UploadSessions(Protocol):
    async def create_upload(self, upload: UploadRecord) -> None: ...
    async def get_upload(self, upload_id: str) -> UploadRecord | None: ...
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

    async def delete_upload(self, upload_id: str) -> bool: ...
    async def registry_uploads(self, registry_id: str) -> list[UploadRecord]: ...
    async def idle_uploads(self, before: int, limit: int) -> list[UploadRecord]:
        """Up to `limit` upload sessions last advanced before `before` (ms), oldest first."""

    async def count_uploads(self) -> int:
        """Upload sessions in the store (all registries, all replicas), expired ones included."""


# the management API's read models ------------------------------------------------------------


class UsageRecorder(Protocol):
    async def add_repository_usage(
        self, registry_id: str, name: str, pulls: int, pushes: int, last_pull_at: int, last_push_at: int
    ) -> None:
        """Add to a repository's counters; a `last_*_at` of 0 leaves that time as it is."""


class ManagementViews(UsageRecorder, Protocol):
    """Usage and content summaries that only the management API reads."""

    async def registry_storage_bytes(self, registry_id: str) -> int:
        """Bytes of the blobs linked in the registry's repositories, each blob counted once."""

    async def storage_bytes_by_registry(self) -> dict[str, int]:
        """`registry_storage_bytes` of every registry by name, in one statement (metrics)."""

    async def store_totals(self) -> tuple[int, int]:
        """Blobs and bytes the store holds: each blob once, however many registries link it."""

    async def list_repository_usage(
        self, registry_id: str, after: str, limit: int, prefix: str = ""
    ) -> list[RepositoryUsage]:
        """Repositories with content (a manifest or a blob link) whose name starts with
        `prefix`, by name after `after`."""

    async def count_repositories_with_content(self, registry_id: str, prefix: str = "") -> int: ...
    async def count_repositories_of(self, registry_ids: list[str]) -> dict[str, int]:
        """`count_repositories_with_content` of several registries at once (a page of a list)."""

    async def get_repository_usage(self, registry_id: str, name: str) -> RepositoryUsage | None: ...
    async def list_artifacts(self, repository_id: int, after: str, limit: int) -> list[ArtifactRecord]: ...
    async def count_artifacts(self, repository_id: int) -> int: ...
    async def get_artifact(self, repository_id: int, digest: str) -> ArtifactRecord | None: ...
    async def referrers_by_subject(
        self, repository_id: int, subjects: list[str]
    ) -> dict[str, list[ReferrerRecord]]:
        """The manifests whose subject is one of `subjects` (signatures, SBOMs), by subject."""
