"""One tenant registry: its repositories, blobs, manifests, tags and referrers.

Every read goes through the repository's own links and rows, so nothing of one registry (or
one repository) can be learnt from another: not by HEAD, not by mount, not by catalog.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import orjson

from .blobs import BlobDriver, ByteChunks, ReadChunks
from .blobs.reads import BlobReads
from .cache import MetadataCache, SingleFlight
from .digest import Digest, looks_like_digest
from .errors import (
    BlobUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestTooLarge,
    ManifestUnknown,
    NameUnknown,
    QuotaExceeded,
    TokenAlreadyUsed,
)
from .manifests import Descriptor, parse_manifest
from .metadata import BlobRecord, ManifestRecord, NameFilter, ReferrerRecord, RegistryRecord, UploadRecord
from .metadata.contracts import RepositoryContent
from .metadata.engine import ReferenceMissing
from .metadata.records import TokenSpent
from .names import is_valid_repository_name, is_valid_tag, validate_tag
from .uploads import Uploads

MAX_MANIFEST_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Page:
    items: list[str]
    has_more: bool


class Registry:
    def __init__(
        self,
        record: RegistryRecord,
        content: RepositoryContent,
        blobs: BlobDriver,
        cache: MetadataCache,
        flights: SingleFlight,
        uploads: Uploads,
        reads: BlobReads,
    ) -> None:
        self.record = record
        self._content = content
        self._blobs = blobs
        self._cache = cache
        self._flights = flights
        self.uploads = uploads
        self._reads = reads

    @property
    def id(self) -> str:
        return self.record.id

    async def repository_id(self, repository: str) -> int | None:
        cached = await self._cache.get_repository_id(self.id, repository)
        if cached is not None:
            return cached
        found = await self._content.get_repository_id(self.id, repository)
        if found is not None:
            await self._cache.set_repository_id(self.id, repository, found)
        return found

    async def _require_repository(self, repository: str, missing: type[Exception]) -> int:
        repository_id = await self.repository_id(repository)
        if repository_id is None:
            raise missing(repository)
        return repository_id

    # blobs ---------------------------------------------------------------------------------

    async def stat_blob(self, repository: str, digest: Digest) -> BlobRecord:
        repository_id = await self._require_repository(repository, BlobUnknown)
        blob = await self._content.get_linked_blob(repository_id, str(digest))
        if blob is None:
            raise BlobUnknown(str(digest))
        return blob

    async def blob_url(self, blob: BlobRecord) -> str | None:
        """Where the client may fetch the blob itself (redirect mode), or None."""
        return await self._blobs.redirect_url(blob.location)

    def read_blob(self, blob: BlobRecord, start: int, end: int) -> ReadChunks:
        return self._reads.read(blob.location, blob.digest, blob.size, start, end)

    async def delete_blob(self, repository: str, digest: Digest) -> None:
        repository_id = await self._require_repository(repository, BlobUnknown)
        if not await self._content.unlink_blob(repository_id, str(digest)):
            raise BlobUnknown(str(digest))

    async def mount_blob(self, repository: str, digest: Digest, source: str) -> BlobRecord | None:
        """Link a blob from another repository of this registry; None if it is not there."""
        if not is_valid_repository_name(source):
            return None  # e.g. containerd naming a repository on another host: plain upload
        source_id = await self.repository_id(source)
        if source_id is None:
            return None
        blob = await self._content.get_linked_blob(source_id, str(digest))
        if blob is None:
            return None
        if not await self._content.link_blob(self.id, repository, blob.digest):
            return None  # collected since it was found: the client uploads it
        return blob

    async def upload_blob(
        self, repository: str, digest: Digest, chunks: ByteChunks, length: int | None
    ) -> BlobRecord:
        await self.check_quota(length or 0, str(digest))  # before a byte is stored
        return await self.uploads.upload_monolithic(
            self.id, repository, digest, chunks, length=length, admit=self.check_quota
        )

    async def start_upload(self, repository: str) -> UploadRecord:
        await self.check_quota(0)
        return await self.uploads.start(self.id, repository)

    async def finish_upload(
        self, repository: str, upload_id: str, digest: Digest, chunks: ByteChunks | None, length: int | None
    ) -> BlobRecord:
        return await self.uploads.finish(
            self.id, repository, upload_id, digest, chunks, length=length, admit=self.check_quota
        )

    @property
    def quota(self) -> int | None:
        """The registry's `storageQuotaBytes` (management API), None for no quota."""
        value = _properties(self.record.properties).get("storageQuotaBytes")
        return value if isinstance(value, int) else None

    async def check_quota(self, size: int, digest: str | None = None) -> None:
        """QuotaExceeded if storing `size` more bytes (a blob of `digest`, counted only if the
        registry does not hold it yet) takes the registry past its quota; with `size` 0, if
        it is at its quota already. Uploads in flight are not counted: a quota can be passed
        by what is being pushed at the moment it is reached."""
        quota = self.quota
        if quota is None:
            return
        if digest is not None and await self._content.registry_has_blob(self.id, digest):
            return
        used = await self._content.stored_bytes(self.id)
        if used + size > quota or (size == 0 and used >= quota):
            raise QuotaExceeded(
                {"quota": quota, "used": used, "blob": size},
                message=f"storage quota reached: the registry may store {quota} bytes and stores {used}"
                + (f"; this blob has {size}" if size else "")
                + ". Delete tags or repositories; garbage collection frees their bytes",
            )

    # manifests -----------------------------------------------------------------------------

    async def get_manifest(self, repository: str, reference: str) -> ManifestRecord:
        tag, digest = _parse_reference(reference)
        repository_id = await self._require_repository(repository, ManifestUnknown)
        if tag is not None:
            digest = await self._resolve_tag(repository_id, tag)
        manifest = await self._cache.get_manifest(repository_id, digest, tagged=tag is not None)
        if manifest is None:
            manifest = await self._flights.do(
                ("m", repository_id, digest), lambda: self._load_manifest(repository_id, digest)
            )
        return manifest

    async def _resolve_tag(self, repository_id: int, tag: str) -> str:
        digest = await self._cache.get_tag(repository_id, tag)
        if digest is None:
            digest = await self._content.get_tag(repository_id, tag)
            if digest is None:
                raise ManifestUnknown(tag)
            await self._cache.set_tag(repository_id, tag, digest)
        return digest

    async def _load_manifest(self, repository_id: int, digest: str) -> ManifestRecord:
        manifest = await self._content.get_manifest(repository_id, digest)
        if manifest is None:
            raise ManifestUnknown(digest)
        await self._cache.set_manifest(repository_id, manifest)
        return manifest

    async def put_manifest(
        self,
        repository: str,
        reference: str,
        content: bytes,
        content_type: str | None,
        *,
        one_time_token: str | None = None,
    ) -> ManifestRecord:
        """Store a manifest; with `one_time_token`, a tag write also spends that token."""
        if len(content) > MAX_MANIFEST_BYTES:
            raise ManifestTooLarge({"limit": MAX_MANIFEST_BYTES})
        tag: str | None = None
        if looks_like_digest(reference):
            expected = Digest.parse(reference)
            digest = Digest.of(content, expected.algorithm)
            if digest != expected:
                raise DigestInvalid(
                    {"expected": str(expected), "computed": str(digest)},
                    message="manifest content does not match the digest in the URL",
                )
        else:
            tag = validate_tag(reference)
            digest = Digest.of(content)

        parsed = parse_manifest(content, content_type)
        repository_id = await self.repository_id(repository)
        blob_digests = [str(d.digest) for d in parsed.blobs]
        child_digests = [str(d.digest) for d in parsed.children]
        missing = await self._missing(repository, blob_digests, child_digests)
        if missing:
            raise ManifestBlobUnknown(missing)
        if repository_id is not None and parsed.blobs:
            await self._check_blob_sizes(repository_id, parsed.blobs)

        manifest = ManifestRecord(
            digest=str(digest),
            media_type=parsed.media_type,
            content=content,
            subject=str(parsed.subject.digest) if parsed.subject else None,
            artifact_type=parsed.artifact_type,
            annotations=parsed.annotations,
        )
        try:
            await self._content.put_manifest(
                self.id,
                repository,
                manifest,
                tag,
                one_time_token,
                blobs=tuple(blob_digests),
                children=tuple(child_digests),
            )
        except TokenSpent:
            raise TokenAlreadyUsed(message="this one-time token has already written its tag") from None
        except ReferenceMissing:
            # the garbage collector removed a blob (or child) since it was checked: the client
            # pushes it again
            raise ManifestBlobUnknown(await self._missing(repository, blob_digests, child_digests)) from None
        if tag is not None and repository_id is not None:
            await self._cache.drop_tags(repository_id, [tag])
        return manifest

    async def _missing(self, repository: str, blobs: list[str], children: list[str]) -> list[str]:
        repository_id = await self.repository_id(repository)
        if repository_id is None:
            return blobs + children
        missing = await self._content.missing_blobs(repository_id, blobs)
        return missing + await self._content.missing_manifests(repository_id, children)

    async def _check_blob_sizes(self, repository_id: int, descriptors: tuple[Descriptor, ...]) -> None:
        for descriptor in descriptors:
            blob = await self._content.get_linked_blob(repository_id, str(descriptor.digest))
            if blob is not None and blob.size != descriptor.size:
                raise ManifestInvalid(
                    {"digest": str(descriptor.digest), "size": descriptor.size, "stored": blob.size},
                    message="descriptor size does not match the stored blob",
                )

    async def delete_manifest(self, repository: str, reference: str) -> None:
        tag, digest = _parse_reference(reference)
        repository_id = await self._require_repository(repository, ManifestUnknown)
        if tag is None:
            try:
                tags = await self._content.delete_manifest(repository_id, digest)
            except KeyError:
                raise ManifestUnknown(digest) from None
            await self._cache.drop_manifest(repository_id, digest)
            await self._cache.drop_tags(repository_id, tags)
        else:
            if not await self._content.delete_tag(repository_id, tag):
                raise ManifestUnknown(tag)
            await self._cache.drop_tags(repository_id, [tag])

    # listings ------------------------------------------------------------------------------

    async def list_tags(self, repository: str, last: str, limit: int) -> Page:
        repository_id = await self._require_repository(repository, NameUnknown)
        tags = await self._content.list_tags(repository_id, last, limit + 1)
        return Page(tags[:limit], len(tags) > limit)

    async def catalog(self, last: str, limit: int, only: NameFilter | None = None) -> Page:
        names = await self._content.list_repositories(self.id, last, limit + 1, only)
        return Page(names[:limit], len(names) > limit)

    async def referrers(
        self, repository: str, digest: Digest, artifact_type: str | None
    ) -> list[ReferrerRecord]:
        repository_id = await self.repository_id(repository)
        if repository_id is None:
            return []
        return await self._content.list_referrers(repository_id, str(digest), artifact_type)


@functools.lru_cache(maxsize=1024)
def _properties(text: str) -> dict[str, Any]:
    value = orjson.loads(text or "{}")
    return value if isinstance(value, dict) else {}


@functools.lru_cache(maxsize=1024)  # pulls name the same few tags; a refused one raises, uncached
def _parse_reference(reference: str) -> tuple[str | None, str]:
    """(tag, "") for a tag, (None, digest) for a digest, to read or delete.

    A malformed digest is a 400; a string outside the tag grammar cannot name anything
    stored, so it is a 404 (the OCI conformance suite probes `.INVALID_MANIFEST_NAME`)."""
    if looks_like_digest(reference):
        return None, str(Digest.parse(reference))
    if not is_valid_tag(reference):
        raise ManifestUnknown(reference)
    return reference, ""
