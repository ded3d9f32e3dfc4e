"""List pagination: `limit` with `offset` (small, stable lists: registries, tokens) or with an
opaque `cursor` (lists that grow while being read: repositories, artifacts, the audit trail,
which page by key so that an insert never shifts a page)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from urllib.parse import urlencode

from .errors import invalid

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
MAX_OFFSET = 2**31 - 1  # SQL engines take 64-bit integers at most


def _integer(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = query.get(name)
    if text is None:
        return default
    if not text.isascii() or not text.isdigit():
        raise invalid(f"{name} must be an integer")
    value = int(text)
    if not low <= value <= high:
        raise invalid(f"{name} must be between {low} and {high}")
    return value


def limit_of(query: Mapping[str, str]) -> int:
    return _integer(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)


def offset_of(query: Mapping[str, str]) -> int:
    return _integer(query, "offset", 0, 0, MAX_OFFSET)


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def cursor_of(query: Mapping[str, str], is_key: Callable[[str], bool]) -> str | None:
    """The key the previous page ended at, or None for the first page. A cursor that does not
    decode to a key of the list (`is_key`) is refused: keys reach SQL, and PostgreSQL refuses
    e.g. NUL characters."""
    text = query.get("cursor")
    if text is None:
        return None
    try:
        key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        key = ""
    if not key or encode_cursor(key) != text or not is_key(key):
        raise invalid("cursor is not one this API returned; use the `next` link of a list")
    return key


def next_link(path: str, limit: int, *, offset: int | None = None, cursor: str | None = None) -> str:
    params: dict[str, str | int] = {"limit": limit}
    if offset is not None:
        params["offset"] = offset
    if cursor is not None:
        params["cursor"] = encode_cursor(cursor)
    return f"{path}?{urlencode(params)}"
