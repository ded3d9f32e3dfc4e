"""The read-only resources: repositories, artifacts and audit entries, and their list cursors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from ocigate.auth.store import AuditFilter
from ocigate.storage.digest import Digest
from ocigate.storage.errors import RegistryError
from ocigate.storage.names import is_valid_repository_name

from .envelope import Created, Envelope
from .model import Matches, Resource, Timestamp, absent
from .pagination import CursorQuery, Page
from .token_models import moment_ms


def is_digest(text: str) -> bool:
    try:
        Digest.parse(text)
    except RegistryError:
        return False
    return True


def _checked(parse: Callable[[str], object]) -> Callable[[str], str]:
    """A validator that keeps the text once `parse` accepts it."""

    def check(text: str) -> str:
        parse(text)
        return text

    return check


def is_entry_id(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 18


class RepositoryCursor(CursorQuery):
    @staticmethod
    def is_key(text: str) -> bool:
        return is_valid_repository_name(text)

    prefix: Annotated[
        str,
        Matches(r"^[a-z0-9._/-]{1,255}$", "the start of a repository name: a-z, 0-9, '.', '_', '/', '-'"),
        Field(description="only repositories whose name starts with this"),
    ] = absent()


class ArtifactCursor(CursorQuery):
    @staticmethod
    def is_key(text: str) -> bool:
        return is_digest(text)


Moment = Annotated[
    str, Field(max_length=64, json_schema_extra={"format": "date-time"}), AfterValidator(_checked(moment_ms))
]


class AuditCursor(CursorQuery):
    @staticmethod
    def is_key(text: str) -> bool:
        return is_entry_id(text)

    actor: Annotated[str, Field(min_length=1, max_length=256, description="who acted: a username")] = absent()
    action: Annotated[
        str,
        Matches(r"^[a-z]+(?:\.[a-z]*)?$", "an action such as token.create, or token. for all on tokens"),
        Field(max_length=64, description="an action (`token.create`), or all of a kind (`token.`)"),
    ] = absent()
    since: Annotated[Moment, Field(description="entries at or after this moment")] = absent()
    until: Annotated[Moment, Field(description="entries before this moment")] = absent()

    def only(self) -> AuditFilter:
        return AuditFilter(
            actor=self.actor,
            action=self.action,
            since=None if self.since is None else moment_ms(self.since),
            until=None if self.until is None else moment_ms(self.until),
        )


Count = Annotated[int, Field(ge=0)]


class RepositoryProperties(Resource):
    name: str
    artifact_count: Count
    pull_count: Count
    push_count: Count
    last_pulled_at: Timestamp | None
    last_pushed_at: Timestamp | None
    size: Annotated[Count, Field(description="bytes of the blobs linked in it and of its manifests")]


class Repository(Envelope):
    type: Literal["repository"] = "repository"
    metadata: Created
    properties: RepositoryProperties


class Referrer(Resource):
    digest: str
    artifact_type: str | None
    size: Count


class Child(Resource):
    digest: str
    platform: Annotated[str | None, Field(description="os/architecture[/variant]; null: none or unknown")]


class ArtifactProperties(Resource):
    digest: str
    media_type: str
    artifact_type: str | None
    kind: Annotated[
        Literal["image", "index", "artifact"],
        Field(description="index: a multi-platform list; artifact: not a runnable image (signature, SBOM…)"),
    ]
    platforms: Annotated[list[str], Field(description="an index's platforms, os/architecture[/variant]")]
    children: Annotated[list[Child], Field(description="the manifests an index lists")]
    subject: Annotated[str | None, Field(description="the manifest this one refers to (a signature's image)")]
    referrers: Annotated[list[Referrer], Field(description="manifests that refer to this one")]
    tags: list[str]
    size: Annotated[Count, Field(description="the manifest and the blobs and manifests it references")]


class ArtifactMetadata(Created):
    pushed_at: Annotated[Timestamp, Field(description="the last push of one of its tags, or its creation")]


class Artifact(Envelope):
    type: Literal["artifact"] = "artifact"
    metadata: ArtifactMetadata
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
