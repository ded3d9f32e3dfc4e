"""Vocabulary of the conformance suite: media types, documents, and spec-shaped assertions.

Everything here follows the OCI Distribution Specification v1.1 (spec.md) and the OCI Image
Specification; the tests read as the spec does ("MUST return 202 with a Location header").
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from tests.registry_client import (
    EMPTY_JSON,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    RegistryClient,
    digest_of,
)
from tests.servers import basic_auth

__all__ = [
    "DOCKER_CONFIG",
    "DOCKER_LAYER",
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "EMPTY_JSON",
    "OCI_CONFIG",
    "OCI_INDEX",
    "OCI_LAYER",
    "OCI_MANIFEST",
    "SPEC_ERROR_CODES",
    "Blob",
    "RawResponse",
    "assert_error",
    "blob",
    "describe",
    "descriptor",
    "digest_of",
    "error_codes",
    "go_bytes",
    "image_index",
    "image_manifest",
    "iter_chunks",
    "link_next",
    "path_of",
    "push_blobs",
    "push_simple_image",
    "raw_request",
    "sha256_hex",
    "unique_bytes",
]

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

# spec.md, "Error Codes": "The `code` field MUST be one of the following".
SPEC_ERROR_CODES = frozenset(
    {
        "BLOB_UNKNOWN",
        "BLOB_UPLOAD_INVALID",
        "BLOB_UPLOAD_UNKNOWN",
        "DIGEST_INVALID",
        "MANIFEST_BLOB_UNKNOWN",
        "MANIFEST_INVALID",
        "MANIFEST_UNKNOWN",
        "NAME_INVALID",
        "NAME_UNKNOWN",
        "SIZE_INVALID",
        "UNAUTHORIZED",
        "DENIED",
        "UNSUPPORTED",
        "TOOMANYREQUESTS",
    }
)


def describe(response: requests.Response) -> str:
    """One request/response exchange, for assertion messages."""
    request = response.request
    headers = ", ".join(f"{k}: {v}" for k, v in response.headers.items())
    return (
        f"{request.method} {request.url} -> {response.status_code}\n"
        f"  headers: {headers}\n  body: {response.content[:600]!r}"
    )


def unique_bytes(label: str, size: int = 0) -> bytes:
    """Content no other test (nor an earlier run) can have pushed."""
    content = f"{label}:{secrets.token_hex(16)}\n".encode()
    if size > len(content):
        content += secrets.token_bytes(size - len(content))
    return content


# --- errors -----------------------------------------------------------------------------


def error_codes(response: requests.Response) -> list[str]:
    """The codes of a spec-shaped error body; asserts the shape on the way."""
    assert response.headers.get("Content-Type", "").split(";")[0].strip() == "application/json", describe(
        response
    )
    body = response.json()
    assert isinstance(body, dict), describe(response)
    errors = body.get("errors")
    assert isinstance(errors, list), describe(response)
    assert errors, describe(response)
    codes = []
    for error in errors:
        assert isinstance(error, dict), describe(response)
        code = error.get("code")
        assert isinstance(code, str), describe(response)
        # "containing only uppercase alphabetic characters and underscores", "MUST be one of"
        assert re.fullmatch(r"[A-Z_]+", code), describe(response)
        assert code in SPEC_ERROR_CODES, describe(response)
        # "The `message` field is OPTIONAL, and if present, it SHOULD be a human readable string"
        assert isinstance(error.get("message", ""), str), describe(response)
        codes.append(code)
    return codes


def assert_error(response: requests.Response, status: int, code: str) -> None:
    assert response.status_code == status, describe(response)
    assert code in error_codes(response), describe(response)


# --- content ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Blob:
    content: bytes
    media_type: str = OCI_LAYER

    @property
    def digest(self) -> str:
        return digest_of(self.content)

    @property
    def size(self) -> int:
        return len(self.content)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


def blob(label: str, media_type: str = OCI_LAYER, size: int = 0) -> Blob:
    return Blob(unique_bytes(label, size), media_type)


def descriptor(media_type: str, content: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest_of(content), "size": len(content), **extra}


def _encode(document: Mapping[str, Any]) -> bytes:
    # Tab-indented like Go's json.MarshalIndent, which the official suite uses: the registry
    # must keep these bytes exactly, whitespace included.
    return json.dumps(document, indent="\t").encode()


def image_manifest(
    config: Mapping[str, Any],
    layers: list[Mapping[str, Any]],
    *,
    media_type: str | None = OCI_MANIFEST,
    artifact_type: str | None = None,
    subject: Mapping[str, Any] | None = None,
    annotations: Mapping[str, str] | None = None,
    **extra: Any,
) -> bytes:
    document: dict[str, Any] = {"schemaVersion": 2}
    if media_type is not None:
        document["mediaType"] = media_type
    if artifact_type is not None:
        document["artifactType"] = artifact_type
    document["config"] = dict(config)
    document["layers"] = [dict(layer) for layer in layers]
    if subject is not None:
        document["subject"] = dict(subject)
    if annotations is not None:
        document["annotations"] = dict(annotations)
    document.update(extra)
    return _encode(document)


def image_index(
    manifests: list[Mapping[str, Any]],
    *,
    media_type: str = OCI_INDEX,
    artifact_type: str | None = None,
    subject: Mapping[str, Any] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> bytes:
    document: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type}
    if artifact_type is not None:
        document["artifactType"] = artifact_type
    document["manifests"] = [dict(m) for m in manifests]
    if subject is not None:
        document["subject"] = dict(subject)
    if annotations is not None:
        document["annotations"] = dict(annotations)
    return _encode(document)


def push_blobs(client: RegistryClient, repository: str, *blobs: Blob) -> None:
    for item in blobs:
        client.push_blob(repository, item.content)


def push_simple_image(
    client: RegistryClient, repository: str, reference: str | None = None, *, label: str = "image"
) -> tuple[bytes, str, Blob, Blob]:
    """Push a config and one layer, then a manifest for them; returns (manifest, digest, config, layer)."""
    config = blob(f"{label} config", OCI_CONFIG)
    layer = blob(f"{label} layer", OCI_LAYER, size=512)
    push_blobs(client, repository, config, layer)
    manifest = image_manifest(config.descriptor(), [layer.descriptor()])
    digest = digest_of(manifest)
    client.push_manifest(repository, reference or digest, manifest)
    return manifest, digest, config, layer


# --- http -----------------------------------------------------------------------------


def path_of(location: str) -> str:
    """A Location header (absolute or relative) as path + query, as clients resolve it."""
    parts = urlsplit(location)
    return parts.path + (f"?{parts.query}" if parts.query else "")


_LINK = re.compile(r'<([^>]*)>\s*;\s*rel="?next"?')


def link_next(response: requests.Response) -> str | None:
    """The target of an RFC 5988 `Link: <…>; rel="next"` header, if any."""
    header = response.headers.get("Link")
    if header is None:
        return None
    match = _LINK.search(header)
    assert match is not None, f"Link header without rel=next: {header!r}"
    return path_of(match.group(1))


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def raw_request(
    base_url: str, method: str, path: str, *, headers: Mapping[str, str] | None = None, body: bytes = b""
) -> RawResponse:
    """Send `path` byte for byte (requests/urllib3 would normalise `..` segments away)."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for key, value in {"Authorization": basic_auth(), **(headers or {})}.items():
            connection.putheader(key, value)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return RawResponse(response.status, response.headers, response.read())
    finally:
        connection.close()


def iter_chunks(content: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(content), size):
        yield content[start : start + size]


def go_bytes(content: bytes) -> str:
    """How Go's encoding/json writes a []byte field (base64), as in the official suite's data."""
    return base64.b64encode(content).decode()


def sha256_hex(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()
