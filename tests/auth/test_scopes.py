"""Scope parsing and granting: the intersection of asked and allowed, nothing for odd scopes."""

from __future__ import annotations

import pytest

from ocigate.auth.scopes import FULL_ACCESS, Grant, Scope, grant_all, parse_grant, parse_scope, parse_scopes


def scope(text: str) -> Scope:
    parsed = parse_scope(text)
    assert parsed is not None
    return parsed


@pytest.mark.parametrize(
    "text",
    [
        "repository:../x:pull",
        "repository:a/../b:push",
        "repository:%2e%2e/x:pull",
        "repository:UPPER:pull",
        "repository:x:fly",
        "repository:x:",
        "registry:other:*",
        "user:admin:*",
        "repository::pull",
        "",
        "garbage",
    ],
)
def test_odd_scopes_grant_nothing(text: str) -> None:
    assert parse_scope(text) is None
    assert grant_all(FULL_ACCESS, parse_scopes([text])) == []


def test_star_means_all_actions_and_scopes_split_on_spaces() -> None:
    assert scope("repository:a/b:*").actions == {"pull", "push", "delete"}
    assert parse_scopes(["repository:a:pull repository:b:push", "registry:catalog:*"]) == [
        Scope("repository", "a", frozenset({"pull"})),
        Scope("repository", "b", frozenset({"push"})),
        Scope("registry", "catalog", frozenset({"*"})),
    ]


def test_patterns() -> None:
    team = Grant("repository", "team/*", frozenset({"pull", "push"}))
    exact = Grant("repository", "app", frozenset({"pull"}))
    assert grant_all((team,), [scope("repository:team/app:pull,push,delete")]) == [
        Scope("repository", "team/app", frozenset({"pull", "push"}))
    ]
    assert grant_all((team,), [scope("repository:teamx/app:pull")]) == []
    assert grant_all((team,), [scope("repository:team:pull")]) == []
    assert grant_all((exact,), [scope("repository:app:push")]) == []
    assert grant_all((exact,), [scope("repository:app/sub:pull")]) == []
    assert grant_all((team,), [scope("registry:catalog:*")]) == []


def test_parse_grant_validates() -> None:
    assert parse_grant("repository", "team/*", ["pull"]).pattern == "team/*"
    assert parse_grant("registry", "anything", ["pull"]) == Grant("registry", "catalog", frozenset({"*"}))
    for bad in (
        ("repository", "../x", ["pull"]),
        ("repository", "a", ["fly"]),
        ("repo", "a", ["pull"]),
        ("repository", "a", []),
        ("repository", "a*b", ["pull"]),
    ):
        with pytest.raises(ValueError):  # noqa: PT011 - the message varies by field
            parse_grant(*bad)
