"""A small Distribution API client for tests (requests over real sockets)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from .servers import ADMIN_PASSWORD, ADMIN_USER

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
EMPTY_JSON = "application/vnd.oci.empty.v1+json"


def digest_of(content: bytes) -> str:
    return "sha256:" + hashlib.sha256(content).hexdigest()


def image_manifest(config: bytes, layers: Sequence[bytes] = (), **fields: Any) -> bytes:
    """An OCI image manifest of these blobs; `fields` are more top-level members."""
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": digest_of(config), "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER, "digest": digest_of(blob), "size": len(blob)} for blob in layers],
        **fields,
    }
    return json.dumps(document).encode()


@dataclass(frozen=True)
class Image:
    manifest: bytes
    digest: str
    config: bytes
    layers: tuple[bytes, ...]


class _FromAddress(HTTPAdapter):
    def __init__(self, address: str) -> None:
        self._address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self._address, 0)
        super().init_poolmanager(*args, **kwargs)


def session_from(address: str) -> requests.Session:
    """A session whose connections leave from `address` (any of 127.0.0.0/8 is this host), so
    that one test can be several clients."""
    session = requests.Session()
    session.mount("http://", _FromAddress(address))
    return session


class RegistryClient:
    """Sends Basic credentials (the admin account user unless told otherwise; `auth=None` for
    anonymous requests), which v2 routes accept besides bearer tokens."""

    def __init__(
        self,
        base_url: str,
        host: str | None = None,
        auth: tuple[str, str] | None = (ADMIN_USER, ADMIN_PASSWORD),
        source: str | None = None,
    ) -> None:
        self.base_url = base_url
        self.session = session_from(source) if source else requests.Session()
        self.session.auth = auth
        if host:
            self.session.headers["Host"] = host

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = path if path.startswith("http") else self.base_url + path
        kwargs.setdefault("timeout", 60)
        kwargs.setdefault("allow_redirects", False)
        return self.session.request(method, url, **kwargs)

    def location(self, response: requests.Response) -> str:
        """The Location header as a path (the server may answer an absolute URL)."""
        location = response.headers["Location"]
        if location.startswith("http"):
            location = "/" + location.split("/", 3)[3]
        return location

    def post_blob(self, repository: str, content: bytes) -> requests.Response:
        """A monolithic upload (POST ?digest= with the body), as it is answered."""
        return self.request(
            "POST",
            f"/v2/{repository}/blobs/uploads/",
            params={"digest": digest_of(content)},
            data=content,
            headers={"Content-Type": "application/octet-stream"},
        )

    def push_blob(self, repository: str, content: bytes) -> str:
        response = self.post_blob(repository, content)
        assert response.status_code == 201, response.text
        return digest_of(content)

    def push_manifest(
        self, repository: str, reference: str, manifest: bytes, media_type: str = OCI_MANIFEST
    ) -> requests.Response:
        response = self.request(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            data=manifest,
            headers={"Content-Type": media_type},
        )
        assert response.status_code == 201, response.text
        return response

    def push_image(
        self,
        repository: str,
        tag: str | None,
        *,
        seed: str = "",
        layers: int = 1,
        extra: dict[str, Any] | None = None,
    ) -> Image:
        config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed}).encode()
        layer_blobs = tuple(f"layer {i} of {repository}:{tag}:{seed}".encode() * 100 for i in range(layers))
        for blob in (config, *layer_blobs):
            self.push_blob(repository, blob)
        manifest = image_manifest(config, layer_blobs, **(extra or {}))
        digest = digest_of(manifest)
        self.push_manifest(repository, tag or digest, manifest)
        return Image(manifest, digest, config, layer_blobs)

    def start_upload(self, repository: str) -> str:
        response = self.request("POST", f"/v2/{repository}/blobs/uploads/")
        assert response.status_code == 202, response.text
        return self.location(response)


def assert_manifest_served(client: RegistryClient, repository: str, image: Image, tag: str) -> None:
    """The image's manifest comes back byte for byte, by tag and by digest."""
    for reference in (tag, image.digest):
        response = client.request(
            "GET", f"/v2/{repository}/manifests/{reference}", headers={"Accept": OCI_MANIFEST}
        )
        assert response.status_code == 200, response.text
        assert response.content == image.manifest
        assert response.headers["Docker-Content-Digest"] == image.digest
