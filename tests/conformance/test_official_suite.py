"""A replay of the official distribution-spec conformance run (v1.1.x `conformance/`: setup,
01_pull, 02_push, 03_discovery, 04_management), request for request and with the same
acceptance rules, so a pass here predicts a pass there.

The official tool runs the enabled workflows in that order against one namespace
(`OCI_NAMESPACE`), each workflow's teardown leaving state the next one builds on. Each case
below enables a set of workflows, like the OCI_TEST_* variables do, on a fresh namespace; the
last case runs all four, as a certification run does.
"""

from __future__ import annotations

import gzip
import io
import json
import secrets
import tarfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from tests.registry_client import RegistryClient

from .oci import (
    EMPTY_JSON,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    SPEC_ERROR_CODES,
    describe,
    digest_of,
    go_bytes,
    path_of,
)

SUCCESS = range(200, 300)
# setup.go errorCodes: what the official suite accepts as a 400's first error code.
OFFICIAL_ERROR_CODES = SPEC_ERROR_CODES - {"TOOMANYREQUESTS"} | {"MANIFEST_UNVERIFIED", "TAG_INVALID"}
TEST_TAG = "tagtest0"
EMPTY_LAYER_TAG = "emptylayer"
NONEXISTENT_MANIFEST = ".INVALID_MANIFEST_NAME"
DUMMY_DIGEST = digest_of(b"hello world")
ANNOTATION = "org.opencontainers.conformance.test"
TYPE_A = "application/vnd.nhl.peanut.butter.bagel"
TYPE_B = "application/vnd.nba.strawberry.jam.croissant"
TYPE_INDEX = "application/vnd.food.stand"


def _go_json(document: Mapping[str, Any]) -> bytes:
    """json.MarshalIndent(v, "", "\\t") of the suite's Go structs."""
    return json.dumps(document, indent="\t").encode()


def _descriptor(
    media_type: str, content: bytes, *, unspecified: str | None = None, **extra: Any
) -> dict[str, Any]:
    # The suite's descriptor type always writes `newUnspecifiedField` (null when unset).
    return {
        "mediaType": media_type,
        "digest": digest_of(content),
        "size": len(content),
        **extra,
        "newUnspecifiedField": unspecified,
    }


def _layer_tarball() -> bytes:
    """A small tar.gz holding one text file, like the suite's base64 layer."""
    data = b"you bothered to find out what was in here. Congratulations!\n"
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo("test.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return gzip.compress(archive.getvalue(), mtime=0)


@dataclass
class DataSet:
    """setup.go's init(): one config and manifest per workflow, referrers of manifests[4]."""

    configs: list[bytes] = field(default_factory=list)
    manifests: list[bytes] = field(default_factory=list)
    layer: bytes = field(default_factory=_layer_tarball)
    blob_a: bytes = field(default_factory=lambda: secrets.token_bytes(42))
    blob_b: bytes = field(default_factory=lambda: secrets.token_bytes(42))
    empty_layer_manifest: bytes = b""
    ref_blob_a: bytes = b"NHL Peanut Butter on my NHL bagel"
    ref_blob_b: bytes = b"NBA Strawberry Jam on my NBA croissant"
    refs: dict[str, bytes] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for _ in range(5):
            image_config: dict[str, Any] = {
                "author": secrets.token_urlsafe(12)[:16],
                "architecture": "amd64",
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": []},
            }
            self.configs.append(_go_json(image_config))
        layers = [_descriptor(OCI_LAYER, self.layer)]
        for config in self.configs:
            config_descriptor = _descriptor(
                OCI_CONFIG, config, data=go_bytes(config), unspecified=go_bytes(b"hello world")
            )
            self.manifests.append(
                _go_json(
                    {
                        "schemaVersion": 2,
                        "mediaType": OCI_MANIFEST,
                        "config": config_descriptor,
                        "layers": layers,
                    }
                )
            )
        config_descriptor = _descriptor(
            OCI_CONFIG, self.configs[1], data=go_bytes(self.configs[1]), unspecified=go_bytes(b"hello world")
        )
        self.empty_layer_manifest = _go_json({"schemaVersion": 2, "config": config_descriptor, "layers": []})

        empty = _descriptor(EMPTY_JSON, b"{}")
        subject = _descriptor(OCI_MANIFEST, self.manifests[4])
        missing_subject = _descriptor(OCI_MANIFEST, self.manifests[3])

        def artifact(name: str, document: dict[str, Any], note: str | None) -> None:
            if note is not None:
                document["annotations"] = {ANNOTATION: note}
            self.refs[name] = _go_json(document)
            if note is not None:
                self.annotations[digest_of(self.refs[name])] = note

        for suffix, blob, kind in (("a", self.ref_blob_a, TYPE_A), ("b", self.ref_blob_b, TYPE_B)):
            artifact(
                f"{suffix}_config",
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": _descriptor(kind, blob),
                    "layers": [empty],
                    "subject": subject,
                },
                f"test config {suffix}",
            )
            artifact(
                f"{suffix}_layer",
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "artifactType": kind,
                    "config": empty,
                    "layers": [_descriptor(kind, blob)],
                    "subject": subject,
                },
                f"test layer {suffix}",
            )
        artifact(
            "c_layer",
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": TYPE_B,
                "config": empty,
                "layers": [_descriptor(TYPE_B, self.ref_blob_b)],
                "subject": missing_subject,
            },
            None,
        )
        artifact(
            "index",
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "artifactType": TYPE_INDEX,
                "manifests": [
                    _descriptor(OCI_MANIFEST, self.refs["a_config"]),
                    _descriptor(OCI_MANIFEST, self.refs["a_layer"]),
                ],
                "subject": subject,
            },
            "test index",
        )


class Run:
    """The reggie client of the suite: `<name>` paths, relative Locations, labelled checks."""

    def __init__(self, client: RegistryClient, namespace: str, crossmount: str) -> None:
        self.client = client
        self.namespace = namespace
        self.crossmount = crossmount

    def call(
        self,
        step: str,
        method: str,
        path: str,
        expect: Collection[int],
        *,
        name: str | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> requests.Response:
        path = path.replace("<name>", name or self.namespace)
        response = self.client.request(method, path, params=params, headers=dict(headers or {}), data=body)
        assert response.status_code in expect, f"[{step}] {describe(response)}"
        return response

    def upload(self, step: str, content: bytes) -> requests.Response:
        """POST then PUT with Content-Type and Content-Length, as every setup step does."""
        location = self.location(self.call(step, "POST", "/v2/<name>/blobs/uploads/", SUCCESS))
        return self.call(
            step,
            "PUT",
            location,
            SUCCESS,
            params={"digest": digest_of(content)},
            headers={"Content-Type": "application/octet-stream"},
            body=content,
        )

    def put_manifest(
        self, step: str, reference: str, body: bytes, media_type: str = OCI_MANIFEST
    ) -> requests.Response:
        return self.call(
            step,
            "PUT",
            f"/v2/<name>/manifests/{reference}",
            SUCCESS,
            headers={"Content-Type": media_type},
            body=body,
        )

    @staticmethod
    def location(response: requests.Response) -> str:
        location = response.headers.get("Location", "")
        assert location, f"no Location: {describe(response)}"
        return path_of(location)


def _digest_header_matches(response: requests.Response, digest: str) -> None:
    header = response.headers.get("Docker-Content-Digest")
    if header:
        assert header == digest, describe(response)


def pull(run: Run, data: DataSet) -> None:
    for config in data.configs[:2]:
        run.upload("pull setup: config blob", config)
    run.upload("pull setup: layer", data.layer)
    run.put_manifest("pull setup: manifest by tag", TEST_TAG, data.manifests[0])
    run.put_manifest("pull setup: manifest by digest", digest_of(data.manifests[1]), data.manifests[1])

    run.call("HEAD nonexistent blob", "HEAD", f"/v2/<name>/blobs/{DUMMY_DIGEST}", [404])
    response = run.call("HEAD existing blob", "HEAD", f"/v2/<name>/blobs/{digest_of(data.configs[0])}", [200])
    _digest_header_matches(response, digest_of(data.configs[0]))
    run.call("GET nonexistent blob", "GET", f"/v2/<name>/blobs/{DUMMY_DIGEST}", [404])
    run.call("GET existing blob", "GET", f"/v2/<name>/blobs/{digest_of(data.configs[0])}", [200])

    accept = {"Accept": OCI_MANIFEST}
    run.call("HEAD nonexistent manifest", "HEAD", f"/v2/<name>/manifests/{NONEXISTENT_MANIFEST}", [404])
    for index in (0, 1):
        digest = digest_of(data.manifests[index])
        response = run.call(
            f"HEAD manifest[{index}] by digest",
            "HEAD",
            f"/v2/<name>/manifests/{digest}",
            [200],
            headers=accept,
        )
        _digest_header_matches(response, digest)
    response = run.call(
        "HEAD manifest by tag", "HEAD", f"/v2/<name>/manifests/{TEST_TAG}", [200], headers=accept
    )
    _digest_header_matches(response, digest_of(data.manifests[0]))
    run.call("GET nonexistent manifest", "GET", f"/v2/<name>/manifests/{NONEXISTENT_MANIFEST}", [404])
    for index in (0, 1):
        digest = digest_of(data.manifests[index])
        run.call(
            f"GET manifest[{index}] by digest", "GET", f"/v2/<name>/manifests/{digest}", [200], headers=accept
        )
    run.call("GET manifest by tag", "GET", f"/v2/<name>/manifests/{TEST_TAG}", [200], headers=accept)

    response = run.call(
        "400 response body should contain OCI-conforming JSON message",
        "GET",
        "/v2/<name>/manifests/sha256:totallywrong",
        [400, 404],
        headers={"Content-Type": OCI_MANIFEST},
        body=b"blablabla",
    )
    if response.status_code == 400:
        assert response.json()["errors"][0]["code"] in OFFICIAL_ERROR_CODES, describe(response)

    for index in (0, 1):
        digest = digest_of(data.manifests[index])
        run.call(
            f"pull teardown: manifest[{index}]", "DELETE", f"/v2/<name>/manifests/{digest}", [*SUCCESS, 405]
        )
    for content in (*data.configs[:2], data.layer):
        run.call(
            "pull teardown: blob", "DELETE", f"/v2/<name>/blobs/{digest_of(content)}", [*SUCCESS, 404, 405]
        )


def push(run: Run, data: DataSet) -> None:
    octets = {"Content-Type": "application/octet-stream"}
    # Blob Upload Streamed
    response = run.call("streamed: POST", "POST", "/v2/<name>/blobs/uploads/", SUCCESS)
    response = run.call(
        "streamed: PATCH", "PATCH", run.location(response), [202], headers=octets, body=data.blob_a
    )
    response = run.call(
        "streamed: PUT with digest",
        "PUT",
        run.location(response),
        [201],
        params={"digest": digest_of(data.blob_a)},
        headers=octets,
    )
    run.location(response)

    # Blob Upload Monolithic
    config = data.configs[1]
    run.call("monolithic: GET nonexistent blob", "GET", f"/v2/<name>/blobs/{DUMMY_DIGEST}", [404])
    response = run.call(
        "monolithic: POST with digest and blob",
        "POST",
        "/v2/<name>/blobs/uploads/",
        [201, 202],
        params={"digest": digest_of(config)},
        headers=octets,
        body=config,
    )
    run.location(response)
    run.call(
        "monolithic: GET blob from prior request",
        "GET",
        f"/v2/<name>/blobs/{digest_of(config)}",
        [404] if response.status_code == 202 else [200],
    )
    response = run.call("monolithic: POST session", "POST", "/v2/<name>/blobs/uploads/", [202])
    response = run.call(
        "monolithic: PUT blob",
        "PUT",
        run.location(response),
        [201],
        params={"digest": digest_of(config)},
        headers=octets,
        body=config,
    )
    run.location(response)
    run.call("monolithic: GET blob", "GET", f"/v2/<name>/blobs/{digest_of(config)}", [200])
    response = run.call("monolithic: POST layer session", "POST", "/v2/<name>/blobs/uploads/", SUCCESS)
    response = run.call(
        "monolithic: PUT layer",
        "PUT",
        run.location(response),
        [201],
        params={"digest": digest_of(data.layer)},
        headers=octets,
        body=data.layer,
    )
    run.location(response)
    run.call("monolithic: GET layer", "GET", f"/v2/<name>/blobs/{digest_of(data.layer)}", [200])

    # Blob Upload Chunked
    blob = data.blob_b
    response = run.call("chunked: POST", "POST", "/v2/<name>/blobs/uploads/", SUCCESS, body=b"")
    minimum = int(response.headers.get("OCI-Chunk-Min-Length") or 0)
    if minimum > len(blob) // 2 + 1:
        blob = secrets.token_bytes(minimum * 2 - 2)
    first, second = blob[: len(blob) // 2 + 1], blob[len(blob) // 2 + 1 :]
    first_range, second_range = f"0-{len(first) - 1}", f"{len(first)}-{len(blob) - 1}"
    run.call(
        "Out-of-order blob upload should return 416",
        "PATCH",
        run.location(response),
        [416],
        headers={**octets, "Content-Range": second_range},
        body=second,
    )
    previous = run.call("chunked: POST", "POST", "/v2/<name>/blobs/uploads/", SUCCESS, body=b"")
    response = run.call(
        "PATCH request with first chunk should return 202",
        "PATCH",
        run.location(previous),
        [202],
        headers={**octets, "Content-Range": first_range},
        body=first,
    )
    assert response.headers.get("Range") == first_range, describe(response)
    run.call(
        "Retry previous blob chunk should return 416",
        "PATCH",
        run.location(previous),
        [416],
        headers={**octets, "Content-Range": first_range},
        body=first,
    )
    response = run.call("Get on stale blob upload should return 204", "GET", run.location(previous), [204])
    assert response.headers.get("Range") == first_range, describe(response)
    response = run.call(
        "PATCH request with second chunk should return 202",
        "PATCH",
        run.location(response),
        [202],
        headers={**octets, "Content-Range": second_range},
        body=second,
    )
    response = run.call(
        "PUT request with digest should return 201",
        "PUT",
        run.location(response),
        [201],
        params={"digest": digest_of(blob)},
        headers={**octets, "Content-Length": "0"},
    )
    run.location(response)

    # Cross-Repository Blob Mount
    response = run.call(
        "Cross-mounting of a blob without the from argument should yield session id",
        "POST",
        "/v2/<name>/blobs/uploads/",
        [202],
        name=run.crossmount,
        params={"mount": DUMMY_DIGEST},
    )
    run.location(response)
    response = run.call(
        "POST request to mount another repository's blob should return 201 or 202",
        "POST",
        "/v2/<name>/blobs/uploads/",
        [201, 202],
        name=run.crossmount,
        params={"mount": digest_of(data.blob_a), "from": run.namespace},
    )
    if response.status_code == 201:
        assert run.location(response) == f"/v2/{run.crossmount}/blobs/{digest_of(data.blob_a)}", describe(
            response
        )
        run.call(
            "GET request to test digest within cross-mount namespace", "GET", run.location(response), [200]
        )
    else:
        assert run.location(response).startswith(f"/v2/{run.crossmount}/blobs/uploads/"), describe(response)

    # Manifest Upload
    run.call("GET nonexistent manifest", "GET", f"/v2/<name>/manifests/{NONEXISTENT_MANIFEST}", [404])
    for index in range(4):
        response = run.call(
            "PUT should accept a manifest upload",
            "PUT",
            f"/v2/<name>/manifests/test{index}",
            [201],
            headers={"Content-Type": OCI_MANIFEST},
            body=data.manifests[1],
        )
        run.location(response)
    response = run.call(
        "Registry should accept a manifest upload with no layers",
        "PUT",
        f"/v2/<name>/manifests/{EMPTY_LAYER_TAG}",
        [201],
        headers={"Content-Type": OCI_MANIFEST},
        body=data.empty_layer_manifest,
    )
    run.location(response)
    digest = digest_of(data.manifests[1])
    run.call(
        "GET manifest by digest",
        "GET",
        f"/v2/<name>/manifests/{digest}",
        [200],
        headers={"Accept": OCI_MANIFEST},
    )

    run.call("push teardown: manifest", "DELETE", f"/v2/<name>/manifests/{digest}", [*SUCCESS, 405])
    empty_digest = digest_of(data.empty_layer_manifest)
    run.call(
        "push teardown: empty-layer manifest",
        "DELETE",
        f"/v2/<name>/manifests/{empty_digest}",
        [*SUCCESS, 405],
    )
    for content in (config, data.layer):
        run.call(
            "push teardown: blob", "DELETE", f"/v2/<name>/blobs/{digest_of(content)}", [*SUCCESS, 404, 405]
        )


def discovery(run: Run, data: DataSet) -> None:
    run.upload("discovery setup: config", data.configs[2])
    run.upload("discovery setup: layer", data.layer)
    for index in range(4):
        run.put_manifest("discovery setup: tags", f"test{index}", data.manifests[2])

    subject_digest = digest_of(data.manifests[4])
    assert digest_of(b"{}") == "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    run.upload("references setup: empty JSON blob", b"{}")
    run.upload("references setup: blob A", data.ref_blob_a)
    for name, media_type in (("a_config", OCI_MANIFEST), ("a_layer", OCI_MANIFEST), ("index", OCI_INDEX)):
        body = data.refs[name]
        response = run.put_manifest(f"references setup: {name}", digest_of(body), body, media_type)
        assert response.headers.get("OCI-Subject") == subject_digest, describe(response)
    run.upload("references setup: config[4]", data.configs[4])
    run.upload("references setup: layer", data.layer)
    run.put_manifest("references setup: subject", TEST_TAG, data.manifests[4])
    run.upload("references setup: blob B", data.ref_blob_b)
    for name in ("b_config", "b_layer"):
        response = run.put_manifest(f"references setup: {name}", digest_of(data.refs[name]), data.refs[name])
        assert response.headers.get("OCI-Subject") == subject_digest, describe(response)
    response = run.put_manifest(
        "references setup: c_layer", digest_of(data.refs["c_layer"]), data.refs["c_layer"]
    )
    assert response.headers.get("OCI-Subject") == digest_of(data.manifests[3]), describe(response)

    # listing tags
    response = run.call("GET request to list tags should yield 200", "GET", "/v2/<name>/tags/list", [200])
    tags = response.json()["tags"]
    half = len(tags) // 2
    response = run.call("tags limitable by n", "GET", "/v2/<name>/tags/list", [200], params={"n": str(half)})
    assert len(response.json()["tags"]) == half, describe(response)
    page = response.json()["tags"]
    response = run.call(
        "start of tags set by last",
        "GET",
        "/v2/<name>/tags/list",
        [200],
        params={"n": str(half), "last": page[half - 1]},
    )

    # listing referrers
    def referrers(step: str, digest: str, **params: str) -> tuple[requests.Response, list[dict[str, Any]]]:
        response = run.call(step, "GET", f"/v2/<name>/referrers/{digest}", [200], params=params)
        assert response.headers.get("Content-Type") == OCI_INDEX, describe(response)
        return response, response.json()["manifests"] or []

    _, manifests = referrers("GET referrers of nonexistent blob", DUMMY_DIGEST)
    assert manifests == []
    response, manifests = referrers("GET referrers of existing blob", subject_digest)
    assert len(manifests) == 5, describe(response)
    assert manifests[0]["digest"] != manifests[1]["digest"]
    for item in manifests:
        assert item.get("annotations") == {ANNOTATION: data.annotations[item["digest"]]}, describe(response)
    response, manifests = referrers("GET referrers with filter", subject_digest, artifactType=TYPE_A)
    if response.headers.get("OCI-Filters-Applied"):
        assert len(manifests) == 2, describe(response)
        assert response.headers["OCI-Filters-Applied"] == "artifactType"
    else:
        assert len(manifests) == 5, describe(response)
    for item in manifests:
        assert item.get("annotations") == {ANNOTATION: data.annotations[item["digest"]]}, describe(response)
    response, manifests = referrers("GET referrers of missing manifest", digest_of(data.manifests[3]))
    assert [m["digest"] for m in manifests] == [digest_of(data.refs["c_layer"])], describe(response)

    # teardown
    for reference in (
        digest_of(data.refs["index"]),
        digest_of(data.manifests[2]),
        subject_digest,
        digest_of(data.refs["a_config"]),
        digest_of(data.refs["a_layer"]),
        TEST_TAG,
        digest_of(data.refs["b_config"]),
        digest_of(data.refs["b_layer"]),
        digest_of(data.refs["c_layer"]),
    ):
        run.call(
            "discovery teardown: manifest",
            "DELETE",
            f"/v2/<name>/manifests/{reference}",
            [*SUCCESS, 404, 405],
        )
    run.call(
        "discovery teardown: config",
        "DELETE",
        f"/v2/<name>/blobs/{digest_of(data.configs[2])}",
        [*SUCCESS, 405],
    )
    run.call(
        "discovery teardown: layer", "DELETE", f"/v2/<name>/blobs/{digest_of(data.layer)}", [*SUCCESS, 405]
    )
    for name in ("index", "a_config", "a_layer"):
        path = f"/v2/<name>/manifests/{digest_of(data.refs[name])}"
        run.call("references teardown", "DELETE", path, [*SUCCESS, 404, 405])
    run.call("references teardown", "DELETE", f"/v2/<name>/manifests/{subject_digest}", [*SUCCESS, 404, 405])
    for name in ("b_config", "b_layer"):
        path = f"/v2/<name>/manifests/{digest_of(data.refs[name])}"
        run.call("references teardown", "DELETE", path, [*SUCCESS, 404, 405])
    for content in (data.configs[4], data.ref_blob_a, data.ref_blob_b, b"{}"):
        run.call(
            "references teardown: blob",
            "DELETE",
            f"/v2/<name>/blobs/{digest_of(content)}",
            [*SUCCESS, 404, 405],
        )


def management(run: Run, data: DataSet) -> None:
    run.upload("management setup: config", data.configs[3])
    run.upload("management setup: layer", data.layer)
    run.put_manifest("management setup: tag", TEST_TAG, data.manifests[3])
    response = run.call("count tags before deleting", "GET", "/v2/<name>/tags/list", [200])
    before = len(response.json()["tags"] or [])

    response = run.call("DELETE tag", "DELETE", f"/v2/<name>/manifests/{TEST_TAG}", [400, 202, 405])
    if response.status_code == 400:
        assert response.json()["errors"][0]["code"] == "UNSUPPORTED", describe(response)
    digest = digest_of(data.manifests[3])
    run.call("DELETE manifest by digest", "DELETE", f"/v2/<name>/manifests/{digest}", [202, 404])
    run.call("GET deleted manifest", "GET", f"/v2/<name>/manifests/{digest}", [404, 200])
    response = run.call("tags list should reflect manifest deletion", "GET", "/v2/<name>/tags/list", [200])
    assert len(response.json()["tags"] or []) < before, describe(response)

    run.call(
        "DELETE config blob", "DELETE", f"/v2/<name>/blobs/{digest_of(data.configs[3])}", [202, 404, 405]
    )
    response = run.call(
        "DELETE layer blob", "DELETE", f"/v2/<name>/blobs/{digest_of(data.layer)}", [202, 404, 405]
    )
    if response.status_code != 405:
        run.call("GET deleted blob", "GET", f"/v2/<name>/blobs/{digest_of(data.configs[3])}", [404])


WORKFLOWS = {"pull": pull, "push": push, "discovery": discovery, "management": management}


@pytest.mark.parametrize(
    "enabled",
    [("pull",), ("push",), ("discovery",), ("management",), ("pull", "push", "discovery", "management")],
    ids=["pull", "push", "discovery", "management", "all-four"],
)
def test_official_conformance_run(client: RegistryClient, repository: str, enabled: tuple[str, ...]) -> None:
    data = DataSet()
    run = Run(client, repository, crossmount=f"conformance-{secrets.token_hex(8)}")
    for workflow in enabled:
        WORKFLOWS[workflow](run, data)
