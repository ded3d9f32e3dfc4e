"""Validation of repository names and tags (OCI distribution-spec, "Pulling manifests").

# SECURITY: names become parts of SQL parameters, cache keys and log lines, never of
# filesystem paths; still, only names matching the spec grammar get past this module, so
# `..`, `%2e%2e`, empty components, or uppercase never reach the domain.
"""

from __future__ import annotations

import re

from .errors import ManifestInvalid, NameInvalid

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_NAME_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG_RE = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
MAX_NAME_LENGTH = 255

# Registry (tenant) names: the management API's rule, also a DNS label.
_REGISTRY_NAME_RE = re.compile(r"[a-z][-a-z0-9]{1,61}[a-z0-9]")


def validate_repository_name(name: str) -> str:
    if len(name) > MAX_NAME_LENGTH or _NAME_RE.fullmatch(name) is None:
        raise NameInvalid(name)
    return name


def is_valid_repository_name(name: str) -> bool:
    return len(name) <= MAX_NAME_LENGTH and _NAME_RE.fullmatch(name) is not None


def validate_tag(tag: str) -> str:
    if _TAG_RE.fullmatch(tag) is None:
        raise ManifestInvalid(tag, message="invalid tag")
    return tag


def is_valid_tag(tag: str) -> bool:
    return _TAG_RE.fullmatch(tag) is not None


def is_valid_registry_name(name: str) -> bool:
    return _REGISTRY_NAME_RE.fullmatch(name) is not None
