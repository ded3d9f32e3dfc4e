"""Scopes asked for (`repository:team/app:pull,push`) and scopes granted (`team/*`: pull).

Docker token auth: the token endpoint grants the intersection of what is asked and what the
principal may do, never an error for a partial grant. A malformed scope grants nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from ocigate.storage.metadata import NameFilter
from ocigate.storage.names import is_valid_repository_name

REPOSITORY: Final = "repository"
REGISTRY: Final = "registry"
CATALOG: Final = "catalog"
Action = Literal["pull", "push", "delete"]
ACTIONS: tuple[Action, ...] = ("pull", "push", "delete")
GRANT_PATTERN = r"\*|[a-z0-9][a-z0-9._/-]*(?:/\*)?"  # `*`, `team/*` or `team/app`
_PATTERN_RE = re.compile(GRANT_PATTERN)


@dataclass(frozen=True, slots=True)
class Scope:
    """One resource and the actions wanted on (or granted for) it."""

    type: str  # repository | registry
    name: str  # repository name, or "catalog"
    actions: frozenset[str]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(sorted(self.actions))}"

    def as_claim(self) -> dict[str, object]:
        return {"type": self.type, "name": self.name, "actions": sorted(self.actions)}


@dataclass(frozen=True, slots=True)
class Grant:
    """What a token's scope entry allows: a repository pattern (`*`, `team/*`, `team/app`)."""

    type: str
    pattern: str
    actions: frozenset[str]

    def covers(self, scope: Scope) -> frozenset[str]:
        if scope.type != self.type:
            return frozenset()
        if self.type == REGISTRY:
            return scope.actions & self.actions if scope.name == CATALOG else frozenset()
        if not _matches(self.pattern, scope.name):
            return frozenset()
        return scope.actions & self.actions


def _matches(pattern: str, name: str) -> bool:
    if pattern == "*":
        return True
    if pattern.endswith("/*"):
        return name.startswith(pattern[:-1])
    return name == pattern


def parse_scope(text: str) -> Scope | None:
    """`type:name:actions`; None for anything malformed (it then grants nothing)."""
    kind, _, rest = text.partition(":")
    name, _, actions_text = rest.rpartition(":")
    requested = {action for action in actions_text.split(",") if action}
    if kind == REPOSITORY:
        # SECURITY: `repository:../x:push` and friends never match a pattern
        if not is_valid_repository_name(name):
            return None
        if "*" in requested:  # docker asks `*` to delete
            requested |= set(ACTIONS)
        actions = requested & set(ACTIONS)
    elif kind == REGISTRY and name == CATALOG:
        actions = {"*"} if requested else set()
    else:
        return None
    return Scope(kind, name, frozenset(actions)) if actions else None


def parse_scopes(values: list[str]) -> list[Scope]:
    """Scopes from query values (`scope` repeated) or a form field (space-separated)."""
    scopes = []
    for value in values:
        for text in value.split():
            scope = parse_scope(text)
            if scope is not None:
                scopes.append(scope)
    return scopes


def parse_grant(type_: str, pattern: str, actions: list[str]) -> Grant:
    """A token scope entry from the management API or the CLI; raises ValueError."""
    if type_ not in (REPOSITORY, REGISTRY):
        raise ValueError(f"scope type must be repository or registry, not {type_!r}")
    if type_ == REPOSITORY and _PATTERN_RE.fullmatch(pattern) is None:
        raise ValueError(f"invalid repository pattern {pattern!r}")
    if type_ == REPOSITORY and "*" not in pattern and not is_valid_repository_name(pattern):
        raise ValueError(f"invalid repository name {pattern!r}")
    unknown = set(actions) - set(ACTIONS)
    if unknown or not actions:
        raise ValueError(f"actions must be among {', '.join(ACTIONS)}")
    if type_ == REGISTRY:
        return Grant(REGISTRY, CATALOG, frozenset({"*"}))
    return Grant(type_, pattern, frozenset(actions))


def grant_all(grants: tuple[Grant, ...], scopes: list[Scope]) -> list[Scope]:
    """For each scope asked, the actions some grant allows; scopes with none are dropped."""
    granted = []
    for scope in scopes:
        actions: frozenset[str] = frozenset()
        for grant in grants:
            actions |= grant.covers(scope)
        if actions:
            granted.append(Scope(scope.type, scope.name, actions))
    return granted


def pullable(grants: tuple[Grant, ...]) -> NameFilter | None:
    """The repositories these grants may pull, for listings; None: every one."""
    names, prefixes = [], []
    for grant in grants:
        if grant.type != REPOSITORY or "pull" not in grant.actions:
            continue
        if grant.pattern == "*":
            return None
        if grant.pattern.endswith("/*"):
            prefixes.append(grant.pattern[:-1])  # as `_matches`: `team/*` is every name under `team/`
        else:
            names.append(grant.pattern)
    return NameFilter(tuple(names), tuple(prefixes))


FULL_ACCESS = (
    Grant(REPOSITORY, "*", frozenset(ACTIONS)),
    Grant(REGISTRY, CATALOG, frozenset({"*"})),
)
