"""Listing referrers (spec.md "Listing Referrers", end-12a/12b) and the official 03_discovery
referrers checks, reproduced with the same set of artifacts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.registry_client import RegistryClient

from .oci import (
    EMPTY_JSON,
    OCI_INDEX,
    OCI_MANIFEST,
    Blob,
    describe,
    digest_of,
    error_codes,
    image_index,
    image_manifest,
    link_next,
    push_blobs,
    push_simple_image,
    unique_bytes,
)

ARTIFACT_TYPE_A = "application/vnd.nhl.peanut.butter.bagel"
ARTIFACT_TYPE_B = "application/vnd.nba.strawberry.jam.croissant"
ARTIFACT_TYPE_INDEX = "application/vnd.food.stand"
ANNOTATION = "org.opencontainers.conformance.test"
EMPTY = Blob(b"{}", EMPTY_JSON)


@dataclass(frozen=True)
class Referrer:
    body: bytes
    media_type: str
    artifact_type: str | None
    annotation: str | None

    @property
    def digest(self) -> str:
        return digest_of(self.body)


@dataclass(frozen=True)
class Referrers:
    subject_digest: str
    missing_subject_digest: str
    a_config: Referrer
    a_layer: Referrer
    index: Referrer
    b_config: Referrer
    b_layer: Referrer
    c_layer: Referrer

    @property
    def of_subject(self) -> list[Referrer]:
        return [self.a_config, self.a_layer, self.index, self.b_config, self.b_layer]


def referrers_of(
    client: RegistryClient, repository: str, digest: str, **params: str
) -> tuple[requests.Response, list[dict[str, Any]]]:
    response = client.request("GET", f"/v2/{repository}/referrers/{digest}", params=params)
    assert response.status_code == 200, describe(response)
    # "The `Content-Type` header MUST be set to `application/vnd.oci.image.index.v1+json`."
    assert response.headers["Content-Type"] == OCI_INDEX
    index = response.json()
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == OCI_INDEX
    assert isinstance(index["manifests"], list)
    return response, index["manifests"]


def push_official_set(client: RegistryClient, repository: str) -> Referrers:
    """03_discovery "References setup": referrers pushed before and after their subject."""
    ref_blob_a = Blob(unique_bytes("NHL Peanut Butter on my NHL bagel"), ARTIFACT_TYPE_A)
    ref_blob_b = Blob(unique_bytes("NBA Strawberry Jam on my NBA croissant"), ARTIFACT_TYPE_B)
    # The subject (the suite's manifests[4]) and a never-pushed one (manifests[3]).
    config = Blob(
        unique_bytes('{"architecture":"amd64","os":"linux"}'), "application/vnd.oci.image.config.v1+json"
    )
    layer = Blob(unique_bytes("layer", 200))
    subject = image_manifest(config.descriptor(), [layer.descriptor()])
    missing_subject = image_manifest(Blob(unique_bytes("other config")).descriptor(), [layer.descriptor()])
    subject_descriptor = {"mediaType": OCI_MANIFEST, "digest": digest_of(subject), "size": len(subject)}
    missing_descriptor = {
        "mediaType": OCI_MANIFEST,
        "digest": digest_of(missing_subject),
        "size": len(missing_subject),
    }

    def put(body: bytes, media_type: str, expected_subject: str) -> None:
        response = client.request(
            "PUT",
            f"/v2/{repository}/manifests/{digest_of(body)}",
            data=body,
            headers={"Content-Type": media_type},
        )
        assert 200 <= response.status_code < 300, describe(response)
        assert response.headers["OCI-Subject"] == expected_subject

    push_blobs(client, repository, EMPTY, ref_blob_a)
    a_config = image_manifest(
        ref_blob_a.descriptor(),
        [EMPTY.descriptor()],
        subject=subject_descriptor,
        annotations={ANNOTATION: "test config a"},
    )
    put(a_config, OCI_MANIFEST, digest_of(subject))
    a_layer = image_manifest(
        EMPTY.descriptor(),
        [ref_blob_a.descriptor()],
        artifact_type=ARTIFACT_TYPE_A,
        subject=subject_descriptor,
        annotations={ANNOTATION: "test layer a"},
    )
    put(a_layer, OCI_MANIFEST, digest_of(subject))
    index = image_index(
        [
            {"mediaType": OCI_MANIFEST, "digest": digest_of(a_config), "size": len(a_config)},
            {"mediaType": OCI_MANIFEST, "digest": digest_of(a_layer), "size": len(a_layer)},
        ],
        artifact_type=ARTIFACT_TYPE_INDEX,
        subject=subject_descriptor,
        annotations={ANNOTATION: "test index"},
    )
    put(index, OCI_INDEX, digest_of(subject))

    push_blobs(client, repository, config, layer)
    client.push_manifest(repository, "tagtest0", subject)

    push_blobs(client, repository, ref_blob_b)
    b_config = image_manifest(
        ref_blob_b.descriptor(),
        [EMPTY.descriptor()],
        subject=subject_descriptor,
        annotations={ANNOTATION: "test config b"},
    )
    put(b_config, OCI_MANIFEST, digest_of(subject))
    b_layer = image_manifest(
        EMPTY.descriptor(),
        [ref_blob_b.descriptor()],
        artifact_type=ARTIFACT_TYPE_B,
        subject=subject_descriptor,
        annotations={ANNOTATION: "test layer b"},
    )
    put(b_layer, OCI_MANIFEST, digest_of(subject))
    c_layer = image_manifest(
        EMPTY.descriptor(),
        [ref_blob_b.descriptor()],
        artifact_type=ARTIFACT_TYPE_B,
        subject=missing_descriptor,
    )
    put(c_layer, OCI_MANIFEST, digest_of(missing_subject))

    return Referrers(
        subject_digest=digest_of(subject),
        missing_subject_digest=digest_of(missing_subject),
        a_config=Referrer(a_config, OCI_MANIFEST, ARTIFACT_TYPE_A, "test config a"),
        a_layer=Referrer(a_layer, OCI_MANIFEST, ARTIFACT_TYPE_A, "test layer a"),
        index=Referrer(index, OCI_INDEX, ARTIFACT_TYPE_INDEX, "test index"),
        b_config=Referrer(b_config, OCI_MANIFEST, ARTIFACT_TYPE_B, "test config b"),
        b_layer=Referrer(b_layer, OCI_MANIFEST, ARTIFACT_TYPE_B, "test layer b"),
        c_layer=Referrer(c_layer, OCI_MANIFEST, ARTIFACT_TYPE_B, None),
    )


def expected_descriptor(referrer: Referrer) -> dict[str, object]:
    expected: dict[str, object] = {
        "mediaType": referrer.media_type,
        "digest": referrer.digest,
        "size": len(referrer.body),
    }
    if referrer.artifact_type is not None:
        expected["artifactType"] = referrer.artifact_type
    if referrer.annotation is not None:
        expected["annotations"] = {ANNOTATION: referrer.annotation}
    return expected


def by_digest(descriptors: list[dict[str, object]]) -> dict[object, dict[str, object]]:
    return {d["digest"]: d for d in descriptors}


@pytest.fixture
def official(client: RegistryClient, repository: str) -> Referrers:
    return push_official_set(client, repository)


def test_referrers_of_an_unknown_digest_is_an_empty_index(client: RegistryClient, repository: str) -> None:
    # 03_discovery "GET request to nonexistent blob should result in empty 200 response"
    push_simple_image(client, repository, "latest")
    _, manifests = referrers_of(client, repository, digest_of(b"hello world"))
    assert manifests == []


def test_referrers_lists_every_referrer_with_artifact_type_and_annotations(
    client: RegistryClient, repository: str, official: Referrers
) -> None:
    # 03_discovery "GET request to existing blob should yield 200": 5 descriptors, 1 annotation each.
    response, manifests = referrers_of(client, repository, official.subject_digest)
    assert len(manifests) == 5, describe(response)
    assert by_digest(manifests) == {r.digest: expected_descriptor(r) for r in official.of_subject}


def test_referrers_filtered_by_artifact_type(
    client: RegistryClient, repository: str, official: Referrers
) -> None:
    # "If filtering is requested and applied, the response MUST include a header
    # `OCI-Filters-Applied: artifactType`"
    response, manifests = referrers_of(
        client, repository, official.subject_digest, artifactType=ARTIFACT_TYPE_A
    )
    assert response.headers["OCI-Filters-Applied"] == "artifactType"
    assert by_digest(manifests) == {
        r.digest: expected_descriptor(r) for r in (official.a_config, official.a_layer)
    }


def test_referrers_filter_on_an_index_artifact_type(
    client: RegistryClient, repository: str, official: Referrers
) -> None:
    response, manifests = referrers_of(
        client, repository, official.subject_digest, artifactType=ARTIFACT_TYPE_INDEX
    )
    assert response.headers["OCI-Filters-Applied"] == "artifactType"
    assert manifests == [expected_descriptor(official.index)]


def test_referrers_filter_matching_nothing_is_empty(
    client: RegistryClient, repository: str, official: Referrers
) -> None:
    response, manifests = referrers_of(
        client, repository, official.subject_digest, artifactType="application/x-none"
    )
    assert response.headers["OCI-Filters-Applied"] == "artifactType"
    assert manifests == []


def test_referrers_without_a_filter_do_not_claim_one(
    client: RegistryClient, repository: str, official: Referrers
) -> None:
    response, _ = referrers_of(client, repository, official.subject_digest)
    assert "OCI-Filters-Applied" not in response.headers


def test_referrers_of_a_subject_that_was_never_pushed(
    client: RegistryClient, repository: str, official: Referrers
) -> None:
    # 03_discovery "GET request to missing manifest should yield 200"
    _, manifests = referrers_of(client, repository, official.missing_subject_digest)
    assert manifests == [expected_descriptor(official.c_layer)]


def test_an_index_referrer_without_artifact_type_omits_it(client: RegistryClient, repository: str) -> None:
    # "If the `artifactType` is empty or missing in an index, the `artifactType` MUST be omitted."
    subject, subject_digest, _, _ = push_simple_image(client, repository, "subject")
    child, child_digest, _, _ = push_simple_image(client, repository, label="child")
    index = image_index(
        [{"mediaType": OCI_MANIFEST, "digest": child_digest, "size": len(child)}],
        subject={"mediaType": OCI_MANIFEST, "digest": subject_digest, "size": len(subject)},
    )
    client.push_manifest(repository, digest_of(index), index, OCI_INDEX)
    _, manifests = referrers_of(client, repository, subject_digest)
    assert manifests == [{"mediaType": OCI_INDEX, "digest": digest_of(index), "size": len(index)}]


def test_a_referrer_without_annotations_has_none_added(client: RegistryClient, repository: str) -> None:
    subject, subject_digest, _, _ = push_simple_image(client, repository, "subject")
    push_blobs(client, repository, EMPTY)
    body = image_manifest(
        EMPTY.descriptor(),
        [EMPTY.descriptor()],
        artifact_type="application/vnd.example.sbom",
        subject={"mediaType": OCI_MANIFEST, "digest": subject_digest, "size": len(subject)},
    )
    client.push_manifest(repository, digest_of(body), body)
    _, manifests = referrers_of(client, repository, subject_digest)
    assert manifests == [
        {
            "mediaType": OCI_MANIFEST,
            "digest": digest_of(body),
            "size": len(body),
            "artifactType": "application/vnd.example.sbom",
        }
    ]


def test_a_deleted_referrer_is_no_longer_listed(
    client: RegistryClient, repository: str, official: Referrers
) -> None:
    response = client.request("DELETE", f"/v2/{repository}/manifests/{official.b_layer.digest}")
    assert response.status_code == 202, describe(response)
    _, manifests = referrers_of(client, repository, official.subject_digest)
    assert {d["digest"] for d in manifests} == {
        r.digest for r in official.of_subject if r is not official.b_layer
    }


def test_referrers_survive_deleting_their_subject(
    client: RegistryClient, repository: str, official: Referrers
) -> None:
    # 03_discovery teardown deletes the subject before its referrers (2xx, 404 or 405 accepted).
    response = client.request("DELETE", f"/v2/{repository}/manifests/{official.subject_digest}")
    assert response.status_code in (202, 404, 405), describe(response)
    for referrer in official.of_subject:
        response = client.request("DELETE", f"/v2/{repository}/manifests/{referrer.digest}")
        assert response.status_code in (202, 404, 405), describe(response)
    _, manifests = referrers_of(client, repository, official.subject_digest)
    assert manifests == []


def test_referrers_are_scoped_to_the_repository(
    client: RegistryClient, repository: str, official: Referrers
) -> None:
    # "Each descriptor is of an image manifest or index in the same `<name>` namespace"
    push_simple_image(client, f"{repository}-other", "latest")
    _, manifests = referrers_of(client, f"{repository}-other", official.subject_digest)
    assert manifests == []


def test_referrers_are_not_tags(client: RegistryClient, repository: str, official: Referrers) -> None:
    response = client.request("GET", f"/v2/{repository}/tags/list")
    assert response.status_code == 200, describe(response)
    assert response.json()["tags"] == ["tagtest0"]


@pytest.mark.parametrize(
    "digest", ["sha256:xyz", "sha256:" + "a" * 63, "md5:d41d8cd98f00b204e9800998ecf8427e", "latest"]
)
def test_referrers_of_an_invalid_digest_is_400(client: RegistryClient, repository: str, digest: str) -> None:
    # "If the request is invalid, such as a `<digest>` with an invalid syntax, a `400 Bad Request`
    # MUST be returned."
    push_simple_image(client, repository, "latest")
    response = client.request("GET", f"/v2/{repository}/referrers/{digest}")
    assert response.status_code == 400, describe(response)
    error_codes(response)


def test_referrers_in_a_repository_never_pushed_to_is_an_empty_index(
    client: RegistryClient, repository: str
) -> None:
    # "If the registry supports the referrers API, the registry MUST NOT return a `404 Not Found` to a
    # referrers API requests."
    _, manifests = referrers_of(client, repository, digest_of(b"x"))
    assert manifests == []


def test_many_referrers_are_all_listed_across_pages(client: RegistryClient, repository: str) -> None:
    # "A `Link` header MUST be included in the response when the descriptor list cannot be returned
    # in a single manifest."
    subject, subject_digest, _, _ = push_simple_image(client, repository, "subject")
    push_blobs(client, repository, EMPTY)
    pushed = set()
    for number in range(60):
        body = image_manifest(
            EMPTY.descriptor(),
            [EMPTY.descriptor()],
            artifact_type="application/vnd.example.many",
            subject={"mediaType": OCI_MANIFEST, "digest": subject_digest, "size": len(subject)},
            annotations={ANNOTATION: f"referrer {number}"},
        )
        client.push_manifest(repository, digest_of(body), body)
        pushed.add(digest_of(body))
    listed: list[str] = []
    response, manifests = referrers_of(client, repository, subject_digest)
    for _ in range(61):
        listed.extend(d["digest"] for d in manifests)
        following = link_next(response)
        if following is None:
            break
        response = client.request("GET", following)
        assert response.status_code == 200, describe(response)
        assert response.headers["Content-Type"] == OCI_INDEX
        manifests = response.json()["manifests"]
    assert sorted(listed) == sorted(pushed)


def test_a_referrer_without_artifact_type_is_typed_by_its_config(
    client: RegistryClient, repository: str
) -> None:
    # "If the `artifactType` is empty or missing in the image manifest, the value of `artifactType`
    # MUST be set to the config descriptor `mediaType` value." — even the empty-JSON one.
    # "The descriptors MUST include annotations from the image manifest or index."
    subject, subject_digest, _, _ = push_simple_image(client, repository, "subject")
    push_blobs(client, repository, EMPTY)
    annotations = {"org.opencontainers.image.created": "2024-01-01T00:00:00Z", "org.example.kind": "note"}
    body = image_manifest(
        EMPTY.descriptor(),
        [EMPTY.descriptor()],
        subject={"mediaType": OCI_MANIFEST, "digest": subject_digest, "size": len(subject)},
        annotations=annotations,
    )
    client.push_manifest(repository, digest_of(body), body)
    _, manifests = referrers_of(client, repository, subject_digest)
    assert manifests == [
        {
            "mediaType": OCI_MANIFEST,
            "digest": digest_of(body),
            "size": len(body),
            "artifactType": EMPTY_JSON,
            "annotations": annotations,
        }
    ]
    _, manifests = referrers_of(client, repository, subject_digest, artifactType=EMPTY_JSON)
    assert [d["digest"] for d in manifests] == [digest_of(body)]
