"""Digests, names, tags and the resumable hash."""

from __future__ import annotations

import hashlib
import os

import pytest

from ocigate.storage.digest import Digest
from ocigate.storage.errors import DigestInvalid, NameInvalid
from ocigate.storage.hashing import ResumableSha256
from ocigate.storage.names import is_valid_registry_name, is_valid_tag, validate_repository_name


@pytest.mark.parametrize(
    "text",
    [
        "sha256:abc",
        "sha256:" + "A" * 64,
        "md5:" + "0" * 32,
        "sha256" + "0" * 64,
        "",
        "sha256:" + "0" * 65,
        "sha256:" + "g" * 64,
        "sha512:" + "0" * 64,
    ],
)
def test_malformed_digests_are_rejected(text: str) -> None:
    with pytest.raises(DigestInvalid):
        Digest.parse(text)


def test_digest_round_trip() -> None:
    digest = Digest.of(b"hello")
    assert Digest.parse(str(digest)) == digest
    assert str(digest) == "sha256:" + hashlib.sha256(b"hello").hexdigest()
    assert Digest.parse("sha512:" + "0" * 128).algorithm == "sha512"


@pytest.mark.parametrize(
    "name",
    ["..", "a/../b", "a/./b", "A", "a//b", "/a", "a/", "-a", "a-", "a..b", "a___b", "x" * 256, ""],
)
def test_bad_repository_names(name: str) -> None:
    with pytest.raises(NameInvalid):
        validate_repository_name(name)


@pytest.mark.parametrize("name", ["a", "library/ubuntu", "a.b_c__d-e--f/g0", "x" * 255])
def test_good_repository_names(name: str) -> None:
    assert validate_repository_name(name) == name


def test_tags_and_registry_names() -> None:
    assert is_valid_tag("v1.0_rc-1")
    assert is_valid_tag("a" * 128)
    assert not is_valid_tag("a" * 129)
    assert not is_valid_tag(".a")
    assert not is_valid_tag("-a")
    assert is_valid_registry_name("alpha")
    assert is_valid_registry_name("a-1b")
    assert not is_valid_registry_name("ab")
    assert not is_valid_registry_name("1abc")
    assert not is_valid_registry_name("abc-")
    assert not is_valid_registry_name("a" * 64)


def test_resumable_sha256_matches_hashlib_across_saves() -> None:
    content = os.urandom(5 * 1024 * 1024 + 3)
    hasher = ResumableSha256()
    for start in range(0, len(content), 777_777):
        hasher = ResumableSha256(hasher.state())  # as if each piece came in another request
        hasher.update(content[start : start + 777_777])
    assert hasher.hexdigest() == hashlib.sha256(content).hexdigest()
    assert ResumableSha256().hexdigest() == hashlib.sha256(b"").hexdigest()


def test_resumable_sha256_rejects_foreign_state() -> None:
    with pytest.raises(ValueError, match="invalid"):
        ResumableSha256(b"short")
