"""Path and Host routing (pure functions)."""

from __future__ import annotations

import pytest

from ocigate.gateway.hosts import registry_name_for_host
from ocigate.gateway.routes import Endpoint, Route, parse_route
from ocigate.storage.errors import NameInvalid


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/v2/", Route(Endpoint.BASE)),
        ("/v2/_catalog?n=1", Route(Endpoint.CATALOG)),
        ("/v2/a/b/tags/list", Route(Endpoint.TAGS, "a/b")),
        ("/v2/a/manifests/latest", Route(Endpoint.MANIFEST, "a", "latest")),
        ("/v2/a/manifests/b/manifests/v1", Route(Endpoint.MANIFEST, "a/manifests/b", "v1")),
        ("/v2/a/blobs/uploads/", Route(Endpoint.UPLOADS, "a")),
        ("/v2/a/blobs/uploads/0123", Route(Endpoint.UPLOAD, "a", "0123")),
        ("/v2/a/blobs/sha256:00", Route(Endpoint.BLOB, "a", "sha256:00")),
        ("/v2/a/blobs/sha256%3A00", Route(Endpoint.BLOB, "a", "sha256:00")),
        ("/v2/x/referrers/sha256:00?artifactType=t", Route(Endpoint.REFERRERS, "x", "sha256:00")),
        ("/v2/a/unknown", None),
        ("/other", None),
    ],
)
def test_parse_route(path: str, route: Route | None) -> None:
    assert parse_route(path) == route


@pytest.mark.parametrize(
    "path",
    [
        "/v2/../etc/manifests/x",
        "/v2/a/%2e%2e/b/tags/list",
        "/v2/a/%2E%2E/blobs/uploads/",
        "/v2/A/tags/list",
        "/v2/a//b/tags/list",
        "/v2/../../x",
        "/v2/%2e%2e/%2e%2e/x",
    ],
)
def test_traversal_and_bad_names_are_name_invalid(path: str) -> None:
    with pytest.raises(NameInvalid):
        parse_route(path)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("alpha.ocigate.test:5000", "alpha"),
        ("ALPHA.ocigate.test", "alpha"),
        ("alpha.ocigate.test.", "alpha"),
        ("a.b.ocigate.test", "default"),
        ("ocigate.test", "default"),
        ("evil-ocigate.test", "default"),
        ("127.0.0.1:5000", "default"),
        ("[::1]:5000", "default"),
        (None, "default"),
    ],
)
def test_registry_name_for_host(host: str | None, expected: str) -> None:
    assert registry_name_for_host(host, "ocigate.test", "default") == expected
