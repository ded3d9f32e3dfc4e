"""Pushing blobs (spec.md "Pushing blobs", end-4a/4b, end-5, end-6, end-11, end-13, end-14)
and the official suite's 02_push blob checks."""

from __future__ import annotations

import re

import pytest
import requests

from tests.registry_client import RegistryClient

from .oci import (
    Blob,
    assert_error,
    blob,
    describe,
    digest_of,
    iter_chunks,
    path_of,
    push_blobs,
)

OCTETS = {"Content-Type": "application/octet-stream"}


def start_upload(client: RegistryClient, repository: str) -> tuple[str, requests.Response]:
    """POST an upload session with `Content-Length: 0`, as the chunked flow requires."""
    response = client.request("POST", f"/v2/{repository}/blobs/uploads/", data=b"")
    assert response.status_code == 202, describe(response)
    return path_of(response.headers["Location"]), response


def assert_stored(client: RegistryClient, repository: str, item: Blob) -> None:
    response = client.request(
        "GET", f"/v2/{repository}/blobs/{item.digest}", headers={"Accept-Encoding": "identity"}
    )
    assert response.status_code == 200, describe(response)
    assert response.content == item.content
    assert response.headers["Docker-Content-Digest"] == item.digest


def assert_absent(client: RegistryClient, repository: str, digest: str) -> None:
    response = client.request("HEAD", f"/v2/{repository}/blobs/{digest}")
    assert response.status_code == 404, describe(response)


def assert_created_blob(
    client: RegistryClient, repository: str, response: requests.Response, item: Blob
) -> None:
    """201 with a Location that is "a pullable blob URL"."""
    assert response.status_code == 201, describe(response)
    location = path_of(response.headers["Location"])
    assert location == f"/v2/{repository}/blobs/{item.digest}"
    assert response.headers["Docker-Content-Digest"] == item.digest
    pulled = client.request("GET", location)
    assert pulled.status_code == 200, describe(pulled)
    assert pulled.content == item.content


# --- obtaining a session ------------------------------------------------------------------


def test_post_opens_a_session_202_with_location_and_upload_uuid(
    client: RegistryClient, repository: str
) -> None:
    location, response = start_upload(client, repository)
    # "The `<location>` MUST contain a UUID representing a unique session ID for the upload"
    uuid = response.headers["Docker-Upload-UUID"]
    assert uuid
    assert uuid in location
    assert location.startswith(f"/v2/{repository}/blobs/uploads/")
    assert response.headers["Range"] == "0-0"
    other, _ = start_upload(client, repository)
    assert other != location


def test_sessions_have_distinct_uuids(client: RegistryClient, repository: str) -> None:
    uuids = {start_upload(client, repository)[1].headers["Docker-Upload-UUID"] for _ in range(5)}
    assert len(uuids) == 5


# --- monolithic ----------------------------------------------------------------------------


def test_post_then_put_uploads_a_blob_monolithically(client: RegistryClient, repository: str) -> None:
    item = blob("monolithic", size=5000)
    location, _ = start_upload(client, repository)
    response = client.request(
        "PUT", location, params={"digest": item.digest}, data=item.content, headers=OCTETS
    )
    assert_created_blob(client, repository, response, item)


def test_single_post_with_digest_uploads_a_blob(client: RegistryClient, repository: str) -> None:
    item = blob("single post", size=5000)
    response = client.request(
        "POST",
        f"/v2/{repository}/blobs/uploads/",
        params={"digest": item.digest},
        data=item.content,
        headers=OCTETS,
    )
    assert_created_blob(client, repository, response, item)


def test_single_post_with_a_wrong_digest_is_400_digest_invalid_and_stores_nothing(
    client: RegistryClient, repository: str
) -> None:
    item = blob("claimed")
    wrong = digest_of(b"something else entirely")
    response = client.request(
        "POST",
        f"/v2/{repository}/blobs/uploads/",
        params={"digest": wrong},
        data=item.content,
        headers=OCTETS,
    )
    assert_error(response, 400, "DIGEST_INVALID")
    assert_absent(client, repository, wrong)
    assert_absent(client, repository, item.digest)


def test_put_with_a_wrong_digest_is_400_digest_invalid_and_stores_nothing(
    client: RegistryClient, repository: str
) -> None:
    item = blob("claimed")
    wrong = digest_of(b"not these bytes")
    location, _ = start_upload(client, repository)
    response = client.request("PUT", location, params={"digest": wrong}, data=item.content, headers=OCTETS)
    assert_error(response, 400, "DIGEST_INVALID")
    assert_absent(client, repository, wrong)
    assert_absent(client, repository, item.digest)


def test_put_without_a_digest_is_400(client: RegistryClient, repository: str) -> None:
    # "The closing `PUT` request MUST include the `<digest>` of the whole blob"; end-6 fails 400/404.
    item = blob("no digest")
    location, _ = start_upload(client, repository)
    response = client.request("PUT", location, data=item.content, headers=OCTETS)
    assert response.status_code == 400, describe(response)
    assert_absent(client, repository, item.digest)


@pytest.mark.parametrize(
    "digest", ["sha256:xyz", "md5:0123456789abcdef0123456789abcdef", "sha256", "nonsense"]
)
def test_put_with_a_malformed_digest_is_400_digest_invalid(
    client: RegistryClient, repository: str, digest: str
) -> None:
    location, _ = start_upload(client, repository)
    response = client.request("PUT", location, params={"digest": digest}, data=b"content", headers=OCTETS)
    assert response.status_code == 400, describe(response)
    assert_error(response, 400, "DIGEST_INVALID")


def test_pushing_the_same_blob_twice_succeeds_both_times(client: RegistryClient, repository: str) -> None:
    item = blob("twice")
    push_blobs(client, repository, item, item)
    assert_stored(client, repository, item)


def test_a_large_blob_round_trips(client: RegistryClient, repository: str) -> None:
    item = blob("large", size=8 * 1024 * 1024 + 13)
    location, _ = start_upload(client, repository)
    response = client.request(
        "PUT", location, params={"digest": item.digest}, data=item.content, headers=OCTETS
    )
    assert response.status_code == 201, describe(response)
    assert_stored(client, repository, item)


# --- streamed and chunked ------------------------------------------------------------------


def test_streamed_patch_without_content_range_then_put_without_body(
    client: RegistryClient, repository: str
) -> None:
    # 02_push "Blob Upload Streamed": PATCH (no Content-Range) → 202; PUT ?digest (no body) → 201.
    item = blob("streamed", size=42)
    location, _ = start_upload(client, repository)
    response = client.request("PATCH", location, data=item.content, headers=OCTETS)
    assert response.status_code == 202, describe(response)
    assert response.headers["Range"] == f"0-{item.size - 1}"
    location = path_of(response.headers["Location"])
    response = client.request("PUT", location, params={"digest": item.digest}, headers=OCTETS)
    assert_created_blob(client, repository, response, item)


def test_patch_with_chunked_transfer_encoding_and_no_content_type(
    client: RegistryClient, repository: str
) -> None:
    item = blob("chunked transfer", size=300_000)
    location, _ = start_upload(client, repository)
    response = client.request("PATCH", location, data=iter_chunks(item.content, 65_536))
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert response.status_code == 202, describe(response)
    assert response.headers["Range"] == f"0-{item.size - 1}"
    response = client.request("PUT", path_of(response.headers["Location"]), params={"digest": item.digest})
    assert_created_blob(client, repository, response, item)


def _chunks_for(response: requests.Response, size: int = 42) -> tuple[bytes, bytes]:
    """The official suite's two-chunk blob, grown when the registry asks for bigger chunks."""
    minimum = int(response.headers.get("OCI-Chunk-Min-Length", "0"))
    if minimum > size // 2 + 1:
        size = minimum * 2 - 2
    content = blob("chunks", size=size).content[:size]
    return content[: size // 2 + 1], content[size // 2 + 1 :]


def test_chunked_upload_follows_the_official_sequence(client: RegistryClient, repository: str) -> None:
    # 02_push "Blob Upload Chunked", step by step.
    post_location, post = start_upload(client, repository)
    first, second = _chunks_for(post)
    item = Blob(first + second)
    first_range = f"0-{len(first) - 1}"
    second_range = f"{len(first)}-{item.size - 1}"

    # "Out-of-order blob upload should return 416" (a fresh session, second chunk first)
    out_of_order, _ = start_upload(client, repository)
    response = client.request(
        "PATCH", out_of_order, data=second, headers={**OCTETS, "Content-Range": second_range}
    )
    assert response.status_code == 416, describe(response)

    # "PATCH request with first chunk should return 202" with "Range: 0-<end-of-range>"
    response = client.request(
        "PATCH", post_location, data=first, headers={**OCTETS, "Content-Range": first_range}
    )
    assert response.status_code == 202, describe(response)
    assert response.headers["Range"] == first_range
    assert response.headers["Location"]

    # "Retry previous blob chunk should return 416"
    response = client.request(
        "PATCH", post_location, data=first, headers={**OCTETS, "Content-Range": first_range}
    )
    assert response.status_code == 416, describe(response)

    # "Get on stale blob upload should return 204 with a range and location"
    response = client.request("GET", post_location)
    assert response.status_code == 204, describe(response)
    assert response.headers["Range"] == first_range
    location = path_of(response.headers["Location"])

    # "PATCH request with second chunk should return 202"
    response = client.request(
        "PATCH", location, data=second, headers={**OCTETS, "Content-Range": second_range}
    )
    assert response.status_code == 202, describe(response)
    assert response.headers["Range"] == f"0-{item.size - 1}"
    location = path_of(response.headers["Location"])

    # "PUT request with digest should return 201"
    response = client.request(
        "PUT", location, params={"digest": item.digest}, headers={**OCTETS, "Content-Length": "0"}
    )
    assert_created_blob(client, repository, response, item)


def test_the_final_chunk_may_come_with_the_closing_put(client: RegistryClient, repository: str) -> None:
    item = blob("final in put", size=1000)
    location, _ = start_upload(client, repository)
    response = client.request(
        "PATCH", location, data=item.content[:600], headers={**OCTETS, "Content-Range": "0-599"}
    )
    assert response.status_code == 202, describe(response)
    response = client.request(
        "PUT",
        path_of(response.headers["Location"]),
        params={"digest": item.digest},
        data=item.content[600:],
        headers={**OCTETS, "Content-Range": "600-999"},
    )
    assert_created_blob(client, repository, response, item)


def test_many_chunks_assemble_in_order(client: RegistryClient, repository: str) -> None:
    item = blob("many chunks", size=10 * 4096 + 7)
    location, _ = start_upload(client, repository)
    offset = 0
    for chunk in iter_chunks(item.content, 4096):
        end = offset + len(chunk) - 1
        response = client.request(
            "PATCH", location, data=chunk, headers={**OCTETS, "Content-Range": f"{offset}-{end}"}
        )
        assert response.status_code == 202, describe(response)
        assert response.headers["Range"] == f"0-{end}"
        location = path_of(response.headers["Location"])
        offset = end + 1
    response = client.request("PUT", location, params={"digest": item.digest})
    assert_created_blob(client, repository, response, item)


def test_a_content_range_with_a_bytes_prefix_is_accepted(client: RegistryClient, repository: str) -> None:
    # Docker-era clients send `Content-Range: bytes=0-99`; the spec's form is `0-99`.
    item = blob("bytes prefix", size=200)
    location, _ = start_upload(client, repository)
    response = client.request(
        "PATCH", location, data=item.content[:100], headers={**OCTETS, "Content-Range": "bytes=0-99"}
    )
    assert response.status_code == 202, describe(response)
    assert response.headers["Range"] == "0-99"
    response = client.request(
        "PATCH",
        path_of(response.headers["Location"]),
        data=item.content[100:],
        headers={**OCTETS, "Content-Range": "100-199"},
    )
    assert response.status_code == 202, describe(response)
    response = client.request("PUT", path_of(response.headers["Location"]), params={"digest": item.digest})
    assert_created_blob(client, repository, response, item)


@pytest.mark.parametrize("content_range", ["1-100", "50-149", "101-200", "0-99"])
def test_a_chunk_that_does_not_start_at_the_current_offset_is_416(
    client: RegistryClient, repository: str, content_range: str
) -> None:
    item = blob("gap", size=300)
    location, _ = start_upload(client, repository)
    response = client.request(
        "PATCH", location, data=item.content[:100], headers={**OCTETS, "Content-Range": "0-99"}
    )
    assert response.status_code == 202, describe(response)
    location = path_of(response.headers["Location"])
    start, end = (int(x) for x in content_range.split("-"))
    response = client.request(
        "PATCH",
        location,
        data=item.content[start : end + 1],
        headers={**OCTETS, "Content-Range": content_range},
    )
    assert response.status_code == 416, describe(response)
    # The session survives and still reports the bytes it has.
    response = client.request("GET", location)
    assert response.status_code == 204, describe(response)
    assert response.headers["Range"] == "0-99"


def test_a_chunked_upload_with_a_wrong_final_digest_stores_nothing(
    client: RegistryClient, repository: str
) -> None:
    item = blob("chunked wrong", size=100)
    wrong = digest_of(b"different")
    location, _ = start_upload(client, repository)
    response = client.request(
        "PATCH", location, data=item.content, headers={**OCTETS, "Content-Range": "0-99"}
    )
    assert response.status_code == 202, describe(response)
    response = client.request("PUT", path_of(response.headers["Location"]), params={"digest": wrong})
    assert_error(response, 400, "DIGEST_INVALID")
    assert_absent(client, repository, wrong)
    assert_absent(client, repository, item.digest)


# --- session status, completion and cancellation -------------------------------------------


def test_get_on_an_upload_is_204_with_location_and_range(client: RegistryClient, repository: str) -> None:
    item = blob("status", size=64)
    location, _ = start_upload(client, repository)
    response = client.request("PATCH", location, data=item.content, headers=OCTETS)
    assert response.status_code == 202, describe(response)
    response = client.request("GET", path_of(response.headers["Location"]))
    assert response.status_code == 204, describe(response)
    assert response.headers["Range"] == "0-63"
    assert path_of(response.headers["Location"]).startswith(f"/v2/{repository}/blobs/uploads/")
    assert response.content == b""


def test_delete_cancels_an_upload_204_then_404_blob_upload_unknown(
    client: RegistryClient, repository: str
) -> None:
    item = blob("cancelled", size=64)
    location, _ = start_upload(client, repository)
    response = client.request("PATCH", location, data=item.content, headers=OCTETS)
    assert response.status_code == 202, describe(response)
    location = path_of(response.headers["Location"])
    response = client.request("DELETE", location)
    assert response.status_code == 204, describe(response)
    assert_error(client.request("GET", location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(client.request("PATCH", location, data=b"more", headers=OCTETS), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(client.request("PUT", location, params={"digest": item.digest}), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(client.request("DELETE", location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_absent(client, repository, item.digest)


def test_a_completed_upload_session_is_gone(client: RegistryClient, repository: str) -> None:
    item = blob("completed")
    location, _ = start_upload(client, repository)
    response = client.request(
        "PUT", location, params={"digest": item.digest}, data=item.content, headers=OCTETS
    )
    assert response.status_code == 201, describe(response)
    assert_error(client.request("GET", location), 404, "BLOB_UPLOAD_UNKNOWN")
    response = client.request(
        "PUT", location, params={"digest": item.digest}, data=item.content, headers=OCTETS
    )
    assert_error(response, 404, "BLOB_UPLOAD_UNKNOWN")


@pytest.mark.parametrize("method", ["GET", "PATCH", "PUT", "DELETE"])
def test_an_unknown_upload_is_404_blob_upload_unknown(
    client: RegistryClient, repository: str, method: str
) -> None:
    client.push_blob(repository, b"make the repository exist")
    location = f"/v2/{repository}/blobs/uploads/3f1d0c52-7c43-4b6e-9a34-0d5c2e0a9b11"
    params = {"digest": digest_of(b"x")} if method == "PUT" else None
    response = client.request(
        method, location, params=params, data=b"x" if method in ("PATCH", "PUT") else None
    )
    assert_error(response, 404, "BLOB_UPLOAD_UNKNOWN")


def test_an_upload_session_belongs_to_its_repository(client: RegistryClient, repository: str) -> None:
    item = blob("session theft")
    location, response = start_upload(client, repository)
    uuid = response.headers["Docker-Upload-UUID"]
    elsewhere = location.replace(f"/v2/{repository}/", f"/v2/{repository}-other/", 1)
    assert uuid in elsewhere
    response = client.request(
        "PUT", elsewhere, params={"digest": item.digest}, data=item.content, headers=OCTETS
    )
    assert_error(response, 404, "BLOB_UPLOAD_UNKNOWN")
    assert_absent(client, f"{repository}-other", item.digest)


# --- mounting ----------------------------------------------------------------------------


def test_mount_from_a_repository_holding_the_blob_is_201(client: RegistryClient, repository: str) -> None:
    item = blob("mountable", size=2048)
    push_blobs(client, repository, item)
    target = f"{repository}/mounted"
    response = client.request(
        "POST", f"/v2/{target}/blobs/uploads/", params={"mount": item.digest, "from": repository}
    )
    # 02_push: on 201 the Location is exactly /v2/<name>/blobs/<digest> and it answers 200.
    assert_created_blob(client, target, response, item)


def test_mount_without_from_yields_an_upload_session(client: RegistryClient, repository: str) -> None:
    # 02_push "Cross-mounting of a blob without the from argument should yield session id"
    response = client.request(
        "POST", f"/v2/{repository}/blobs/uploads/", params={"mount": digest_of(b"hello world")}
    )
    assert response.status_code == 202, describe(response)
    assert path_of(response.headers["Location"]).startswith(f"/v2/{repository}/blobs/uploads/")


def test_mount_of_a_blob_the_source_lacks_yields_an_upload_session(
    client: RegistryClient, repository: str
) -> None:
    push_blobs(client, repository, blob("unrelated"))
    item = blob("not there")
    target = f"{repository}/target"
    response = client.request(
        "POST", f"/v2/{target}/blobs/uploads/", params={"mount": item.digest, "from": repository}
    )
    assert response.status_code == 202, describe(response)
    location = path_of(response.headers["Location"])
    assert location.startswith(f"/v2/{target}/blobs/uploads/")
    assert_absent(client, target, item.digest)
    # The session is a real one: the client "MAY proceed with the upload".
    response = client.request(
        "PUT", location, params={"digest": item.digest}, data=item.content, headers=OCTETS
    )
    assert_created_blob(client, target, response, item)


@pytest.mark.parametrize("source", ["Not/A/Valid/Name", "..", "a//b", "-leading"])
def test_mount_from_an_invalid_repository_name_yields_an_upload_session(
    client: RegistryClient, repository: str, source: str
) -> None:
    item = blob("invalid from")
    response = client.request(
        "POST", f"/v2/{repository}/blobs/uploads/", params={"mount": item.digest, "from": source}
    )
    assert response.status_code == 202, describe(response)
    assert path_of(response.headers["Location"]).startswith(f"/v2/{repository}/blobs/uploads/")


def test_mount_does_not_require_the_target_repository_to_exist(
    client: RegistryClient, repository: str
) -> None:
    item = blob("fresh target")
    push_blobs(client, repository, item)
    target = f"{repository}-brand-new"
    assert client.request("GET", f"/v2/{target}/tags/list").status_code == 404
    response = client.request(
        "POST", f"/v2/{target}/blobs/uploads/", params={"mount": item.digest, "from": repository}
    )
    assert_created_blob(client, target, response, item)


def test_location_headers_are_valid_urls(client: RegistryClient, repository: str) -> None:
    location = client.request("POST", f"/v2/{repository}/blobs/uploads/").headers["Location"]
    assert re.fullmatch(r"(https?://[^/]+)?/v2/[^?#\s]+(\?[^#\s]*)?", location), location


def test_two_sessions_may_upload_the_same_blob_at_once(client: RegistryClient, repository: str) -> None:
    # "If process A and B upload the same layer at the same time, both operations will proceed"
    item = blob("dogpile", size=10_000)
    first, _ = start_upload(client, repository)
    second, _ = start_upload(client, repository)
    locations = []
    for location in (first, second):
        response = client.request(
            "PATCH", location, data=item.content[:5000], headers={**OCTETS, "Content-Range": "0-4999"}
        )
        assert response.status_code == 202, describe(response)
        locations.append(path_of(response.headers["Location"]))
    for location in locations:
        response = client.request(
            "PUT", location, params={"digest": item.digest}, data=item.content[5000:], headers=OCTETS
        )
        assert_created_blob(client, repository, response, item)


def test_mount_into_a_repository_that_already_has_the_blob_is_201(
    client: RegistryClient, repository: str
) -> None:
    item = blob("already there")
    target = f"{repository}/target"
    push_blobs(client, repository, item)
    push_blobs(client, target, item)
    response = client.request(
        "POST", f"/v2/{target}/blobs/uploads/", params={"mount": item.digest, "from": repository}
    )
    assert_created_blob(client, target, response, item)
