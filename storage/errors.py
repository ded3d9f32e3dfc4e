"""Domain errors. Each names the OCI distribution-spec error code it maps to.

The gateway turns them into `{"errors": [{"code", "message", "detail"}]}` responses;
the domain itself knows nothing about HTTP beyond the status it suggests.
"""

from __future__ import annotations

from typing import Any, ClassVar


class RegistryError(Exception):
    code: ClassVar[str] = "UNKNOWN"
    status: ClassVar[int] = 500
    message: str = "unknown error"  # the class's; an instance may say more

    def __init__(
        self,
        detail: Any = None,
        *,
        message: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message or self.message)
        self.detail = detail
        self.headers = headers  # extra response headers, e.g. the Range an upload stands at
        if message is not None:
            self.message = message


class BlobUnknown(RegistryError):
    code, status, message = "BLOB_UNKNOWN", 404, "blob unknown to registry"


class BlobUploadInvalid(RegistryError):
    code, status, message = "BLOB_UPLOAD_INVALID", 400, "blob upload invalid"


class BlobUploadUnknown(RegistryError):
    code, status, message = "BLOB_UPLOAD_UNKNOWN", 404, "blob upload unknown to registry"


class DigestInvalid(RegistryError):
    code, status, message = "DIGEST_INVALID", 400, "provided digest did not match uploaded content"


class ManifestBlobUnknown(RegistryError):
    code, status, message = (
        "MANIFEST_BLOB_UNKNOWN",
        400,
        "manifest references a blob unknown to the repository",
    )


class ManifestInvalid(RegistryError):
    code, status, message = "MANIFEST_INVALID", 400, "manifest invalid"


class ManifestTooLarge(ManifestInvalid):
    status = 413
    message = "manifest exceeds the size limit"


class ManifestUnknown(RegistryError):
    code, status, message = "MANIFEST_UNKNOWN", 404, "manifest unknown to registry"


class NameInvalid(RegistryError):
    code, status, message = "NAME_INVALID", 400, "invalid repository name"


class NameUnknown(RegistryError):
    code, status, message = "NAME_UNKNOWN", 404, "repository name not known to registry"


class SizeInvalid(RegistryError):
    code, status, message = "SIZE_INVALID", 400, "provided length did not match content length"


class BlobTooLarge(SizeInvalid):
    status = 413
    message = "blob exceeds the size limit"


class RequestBodyTimeout(BlobUploadInvalid):
    """The client stopped sending the body it announced: 408, nothing of the request kept."""

    status = 408
    message = "the request body stopped arriving"


class RangeInvalid(RegistryError):
    """An upload chunk out of order, or a read range that cannot be satisfied (OCI spec: 416)."""

    code, status, message = "BLOB_UPLOAD_INVALID", 416, "requested range not satisfiable"


class PaginationInvalid(RegistryError):
    code, status, message = "PAGINATION_NUMBER_INVALID", 400, "invalid number of results requested"


class Unsupported(RegistryError):
    code, status, message = "UNSUPPORTED", 415, "the operation is unsupported"


class RegistryUnknown(RegistryError):
    """The Host names a registry that does not exist."""

    code, status, message = "NAME_UNKNOWN", 404, "no registry is served at this host"


class TokenAlreadyUsed(RegistryError):
    """A one-time token tried to write a second tag (the race is decided in one transaction)."""

    code, status, message = "DENIED", 403, "one-time token already used"


class QuotaExceeded(RegistryError):
    """A push that would take the registry past its storage quota (`storageQuotaBytes`)."""

    code, status, message = "DENIED", 403, "the registry's storage quota is reached"


RETRY_AFTER_SECONDS = 5  # what a 503 asks clients to wait: a store's outage or a breaker's pause


class StorageUnavailable(RegistryError):
    """A store (metadata, blobs) is down or not answering: a 503 with Retry-After."""

    code, status, message = "UNAVAILABLE", 503, "storage backend unavailable, retry later"

    def __init__(
        self, detail: Any = None, *, message: str | None = None, headers: dict[str, str] | None = None
    ):
        super().__init__(
            detail, message=message, headers={"Retry-After": str(RETRY_AFTER_SECONDS), **(headers or {})}
        )


class StorageFull(StorageUnavailable):
    """The disk (or database) holding staged bytes or metadata is full: 507 Insufficient Storage."""

    status = 507
    message = "the registry's storage is full; retry once space has been freed"
