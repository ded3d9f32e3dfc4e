"""Content discovery: listing tags (end-8a/8b), the catalog, and the official 03_discovery tag checks."""

from __future__ import annotations

import random

import pytest

from tests.registry_client import RegistryClient

from .oci import (
    OCI_CONFIG,
    assert_error,
    blob,
    describe,
    digest_of,
    image_manifest,
    link_next,
    push_blobs,
)

TAGS = ["alpha", "beta", "gamma", "delta", "epsilon", "v1", "v10", "v2", "zeta", "a0", "a1"]


def push_tags(client: RegistryClient, repository: str, tags: list[str]) -> None:
    """One manifest, tagged with each tag in a shuffled order (the listing must sort them)."""
    config = blob("config", OCI_CONFIG)
    layer = blob("layer")
    push_blobs(client, repository, config, layer)
    body = image_manifest(config.descriptor(), [layer.descriptor()])
    shuffled = list(tags)
    random.Random(repository).shuffle(shuffled)
    for tag in shuffled:
        client.push_manifest(repository, tag, body)


def list_tags(client: RegistryClient, repository: str, **params: str | int) -> tuple[list[str], str | None]:
    response = client.request("GET", f"/v2/{repository}/tags/list", params=params)
    assert response.status_code == 200, describe(response)
    body = response.json()
    assert body["name"] == repository
    assert isinstance(body["tags"], list), describe(response)
    return body["tags"], link_next(response)


def test_tags_list_is_200_with_name_and_sorted_tags(client: RegistryClient, repository: str) -> None:
    push_tags(client, repository, TAGS)
    response = client.request("GET", f"/v2/{repository}/tags/list")
    assert response.status_code == 200, describe(response)
    assert response.headers["Content-Type"].split(";")[0] == "application/json"
    # Lower-case letters and digits only: lexical and "ASCIIbetical" order agree.
    assert response.json() == {"name": repository, "tags": sorted(TAGS)}
    assert "Link" not in response.headers


def test_tags_of_a_nonexistent_repository_is_404_name_unknown(
    client: RegistryClient, repository: str
) -> None:
    assert_error(client.request("GET", f"/v2/{repository}/tags/list"), 404, "NAME_UNKNOWN")


def test_a_repository_with_only_untagged_manifests_lists_no_tags(
    client: RegistryClient, repository: str
) -> None:
    config = blob("config", OCI_CONFIG)
    push_blobs(client, repository, config)
    body = image_manifest(config.descriptor(), [])
    client.push_manifest(repository, digest_of(body), body)
    tags, link = list_tags(client, repository)
    assert tags == []
    assert link is None


def test_n_limits_the_number_of_tags(client: RegistryClient, repository: str) -> None:
    # 03_discovery "GET number of tags should be limitable by `n` query parameter" (n = total / 2).
    push_tags(client, repository, TAGS)
    half = len(TAGS) // 2
    tags, _ = list_tags(client, repository, n=half)
    # "MAY return fewer than <int> results, but only when the total number of tags … is less than
    # <int> or a Link header is provided. Otherwise, the response MUST include <int> results."
    assert tags == sorted(TAGS)[:half]


def test_n_larger_than_the_tag_count_returns_all_without_link(
    client: RegistryClient, repository: str
) -> None:
    push_tags(client, repository, TAGS)
    tags, link = list_tags(client, repository, n=1000)
    assert tags == sorted(TAGS)
    assert link is None


def test_n_zero_returns_an_empty_list_and_no_link(client: RegistryClient, repository: str) -> None:
    # "When `n` is zero, this endpoint MUST return an empty list, and MUST NOT include a `Link` header."
    push_tags(client, repository, TAGS)
    tags, link = list_tags(client, repository, n=0)
    assert tags == []
    assert link is None


def test_last_starts_after_the_given_tag(client: RegistryClient, repository: str) -> None:
    # 03_discovery "GET start of tag is set by `last` query parameter"
    push_tags(client, repository, TAGS)
    ordered = sorted(TAGS)
    half = len(TAGS) // 2
    first_page, _ = list_tags(client, repository, n=half)
    tags, _ = list_tags(client, repository, n=half, last=first_page[-1])
    assert tags == ordered[half : 2 * half]
    assert first_page[-1] not in tags


def test_last_without_n_returns_everything_after_it(client: RegistryClient, repository: str) -> None:
    # "When using the `last` query parameter, the `n` parameter is OPTIONAL."
    push_tags(client, repository, TAGS)
    tags, _ = list_tags(client, repository, last="delta")
    assert tags == [t for t in sorted(TAGS) if t > "delta"]


def test_last_need_not_be_an_existing_tag(client: RegistryClient, repository: str) -> None:
    push_tags(client, repository, TAGS)
    tags, _ = list_tags(client, repository, n=3, last="b")
    assert tags == [t for t in sorted(TAGS) if t > "b"][:3]


def test_last_after_the_final_tag_returns_an_empty_list(client: RegistryClient, repository: str) -> None:
    push_tags(client, repository, TAGS)
    tags, link = list_tags(client, repository, n=5, last="zeta")
    assert tags == []
    assert link is None


@pytest.mark.parametrize("n", [1, 2, 3, 4, 10])
def test_following_link_next_pages_through_every_tag_once(
    client: RegistryClient, repository: str, n: int
) -> None:
    # "If included, the `Link` header MUST be set according to RFC5988 with the Relation Type rel="next"."
    push_tags(client, repository, TAGS)
    seen: list[str] = []
    response = client.request("GET", f"/v2/{repository}/tags/list", params={"n": n})
    for _ in range(len(TAGS) + 2):
        assert response.status_code == 200, describe(response)
        page = response.json()["tags"]
        assert len(page) <= n
        seen.extend(page)
        following = link_next(response)
        if following is None:
            break
        assert following.startswith(f"/v2/{repository}/tags/list?")
        response = client.request("GET", following)
    assert seen == sorted(TAGS)


def test_pages_are_full_until_the_last_one(client: RegistryClient, repository: str) -> None:
    push_tags(client, repository, TAGS)
    tags, link = list_tags(client, repository, n=4)
    assert tags == sorted(TAGS)[:4]
    assert link is not None


def test_tag_order_is_lexical_for_mixed_separators(client: RegistryClient, repository: str) -> None:
    tags = ["1.10", "1.9", "1-0", "1_0", "10", "1", "2.0"]
    push_tags(client, repository, tags)
    listed, _ = list_tags(client, repository)
    # Lexical and Go's sort.Strings agree on these (no upper case involved).
    assert listed == sorted(tags)


@pytest.mark.parametrize("n", ["-1", "abc", "1.5"])
def test_a_malformed_n_is_400_never_500(client: RegistryClient, repository: str, n: str) -> None:
    push_tags(client, repository, ["one"])
    response = client.request("GET", f"/v2/{repository}/tags/list", params={"n": n})
    assert response.status_code == 400, describe(response)


# --- catalog ------------------------------------------------------------------------------


def list_catalog(client: RegistryClient, **params: str | int) -> tuple[list[str], str | None]:
    response = client.request("GET", "/v2/_catalog", params=params)
    assert response.status_code == 200, describe(response)
    repositories = response.json()["repositories"]
    assert isinstance(repositories, list)
    return repositories, link_next(response)


def test_catalog_lists_repositories_in_lexical_order(client: RegistryClient, repository: str) -> None:
    names = [f"{repository}/{suffix}" for suffix in ("c", "a", "b/nested", "b")]
    for name in names:
        client.push_image(name, "latest")
    listed, _ = list_catalog(client, last=f"{repository}/", n=len(names))
    assert listed == sorted(names)
    everything, _ = list_catalog(client)
    assert everything == sorted(everything)
    assert set(names) <= set(everything)


def test_catalog_paginates_with_n_last_and_link(client: RegistryClient, repository: str) -> None:
    names = sorted(f"{repository}/r{i}" for i in range(5))
    for name in names:
        client.push_image(name, "latest")
    page, link = list_catalog(client, n=2, last=f"{repository}/")
    assert page == names[:2]
    assert link is not None
    collected = list(page)
    while link is not None and len(collected) < len(names):
        response = client.request("GET", link)
        assert response.status_code == 200, describe(response)
        collected.extend(response.json()["repositories"])
        link = link_next(response)
    assert collected[: len(names)] == names
    page, link = list_catalog(client, n=0)
    assert page == []
    assert link is None
