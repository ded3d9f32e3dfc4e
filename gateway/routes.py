"""Parsing `/v2/…` paths into routes.

One catch-all aiohttp route hands every `/v2/` path here, so that a malformed name or
reference is answered with the OCI error the spec wants (NAME_INVALID, DIGEST_INVALID…)
instead of a router's bare 404. Repository names contain slashes, so each pattern anchors on
its fixed tail and the name takes the rest.

# SECURITY: the path is taken raw and percent-decoded here, once, so `%2e%2e` and `..` reach
# name validation as the dots they are; nothing normalises them away first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from urllib.parse import unquote

from ocigate.storage.errors import NameInvalid
from ocigate.storage.names import validate_repository_name


class Endpoint(Enum):
    """Each with the kind and route template its requests are counted under in /metrics."""

    BASE = ("other", "/v2/")
    CATALOG = ("other", "/v2/_catalog")
    TAGS = ("other", "/v2/{name}/tags/list")
    MANIFEST = ("manifest", "/v2/{name}/manifests/{reference}")
    BLOB = ("blob", "/v2/{name}/blobs/{digest}")
    UPLOADS = ("upload", "/v2/{name}/blobs/uploads/")  # POST …/blobs/uploads/
    UPLOAD = ("upload", "/v2/{name}/blobs/uploads/{reference}")  # …/blobs/uploads/<id>
    REFERRERS = ("other", "/v2/{name}/referrers/{digest}")

    def __init__(self, kind: str, template: str) -> None:
        self.kind = kind  # plain attributes: read per request, where an Enum's hash is slow
        self.template = template


@dataclass(frozen=True, slots=True)
class Route:
    endpoint: Endpoint
    repository: str = ""
    argument: str = ""  # reference, digest or upload id


_PATTERNS: tuple[tuple[re.Pattern[str], Endpoint], ...] = (
    (re.compile(r"/v2/(.+)/manifests/([^/]+)"), Endpoint.MANIFEST),
    (re.compile(r"/v2/(.+)/blobs/uploads/?"), Endpoint.UPLOADS),
    (re.compile(r"/v2/(.+)/blobs/uploads/([^/]+)"), Endpoint.UPLOAD),
    (re.compile(r"/v2/(.+)/blobs/([^/]+)"), Endpoint.BLOB),
    (re.compile(r"/v2/(.+)/tags/list"), Endpoint.TAGS),
    (re.compile(r"/v2/(.+)/referrers/([^/]+)"), Endpoint.REFERRERS),
)


def parse_route(raw_path: str) -> Route | None:
    return _parse_path(raw_path.partition("?")[0])


@lru_cache(maxsize=1024)  # pulls ask for the same few paths over and over; a Route is immutable
def _parse_path(raw_path: str) -> Route | None:
    path = unquote(raw_path)
    if path in ("/v2/", "/v2"):
        return Route(Endpoint.BASE)
    if path == "/v2/_catalog":
        return Route(Endpoint.CATALOG)
    for pattern, endpoint in _PATTERNS:
        match = pattern.fullmatch(path)
        if match is not None:
            groups = match.groups()
            repository = validate_repository_name(groups[0])
            return Route(endpoint, repository, groups[1] if len(groups) > 1 else "")
    if path.startswith("/v2/") and any(s in (".", "..") for s in path.split("/")):
        raise NameInvalid(path, message="path traversal is not a repository name")
    return None
