"""The read-only resources: repositories, artifacts and audit entries, and their list cursors."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from ocigate.storage.digest import Digest
from ocigate.storage.errors import RegistryError
from ocigate.storage.names import is_valid_repository_name

from .envelope import Created, Envelope
from .model import Resource, Timestamp
from .pagination import CursorQuery, Page


def is_digest(text: str) -> bool:
    try:
        Digest.parse(text)
    except RegistryError:
        return False
    return True


def is_entry_id(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 18


class RepositoryCursor(CursorQuery):
    @staticmethod
    def is_key(text: str) -> bool:
        return is_valid_repository_name(text)


class ArtifactCursor(CursorQuery):
    @staticmethod
    def is_key(text: str) -> bool:
        return is_digest(text)


class AuditCursor(CursorQuery):
    @staticmethod
    def is_key(text: str) -> bool:
        return is_entry_id(text)


Count = Annotated[int, Field(ge=0)]


class RepositoryProperties(Resource):
    name: str
    artifact_count: Count
    pull_count: Count
    push_count: Count
    last_pulled_at: Timestamp | None
    last_pushed_at: Timestamp | None


class Repository(Envelope):
    type: Literal["repository"] = "repository"
    metadata: Created
    properties: RepositoryProperties


class ArtifactProperties(Resource):
    digest: str
    media_type: str
    artifact_type: str | None
    tags: list[str]
    size: Annotated[Count, Field(description="the manifest and the blobs and manifests it references")]


class Artifact(Envelope):
    type: Literal["artifact"] = "artifact"
    metadata: Created
    properties: ArtifactProperties


class AuditEntryProperties(Resource):
    actor: str
    action: str
    target: str
    address: str | None
    detail: dict[str, Any] | None


class AuditEntry(Envelope):
    type: Literal["auditEntry"] = "auditEntry"
    metadata: Created
    properties: AuditEntryProperties


class RepositoryList(Page[Repository]):
    pass


class ArtifactList(Page[Artifact]):
    pass


class AuditList(Page[AuditEntry]):
    pass
