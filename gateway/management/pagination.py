"""List pagination: `limit` with `offset` (small, stable lists: registries, tokens) or with an
opaque `cursor` (lists that grow while being read: repositories, artifacts, the audit trail,
which page by key so that an insert never shifts a page).

The query models are what the list handlers take (`query: OffsetQuery`); the document's query
parameters are generated from them.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Annotated, Generic, TypeVar
from urllib.parse import urlencode

from pydantic import BeforeValidator, Field, field_validator

from .model import Query, Resource, absent, rule

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
MAX_OFFSET = 2**31 - 1  # SQL engines take 64-bit integers at most


def _decimal(text: object) -> object:
    """A query value is text: digits only (no sign, space or exponent), then an integer."""
    if isinstance(text, str):
        if not text.isascii() or not text.isdigit():
            raise rule("must be an integer")
        return int(text)
    return text


Limit = Annotated[int, Field(ge=1, le=MAX_LIMIT), BeforeValidator(_decimal)]
Offset = Annotated[int, Field(ge=0, le=MAX_OFFSET), BeforeValidator(_decimal)]


class OffsetQuery(Query):
    limit: Limit = DEFAULT_LIMIT
    offset: Offset = 0

    def window(self, items: Sequence[T]) -> list[T]:
        return list(items[self.offset : self.offset + self.limit])


class CursorQuery(Query):
    """`cursor` is the key the previous page ended at, encoded; `is_key` (each list's own)
    refuses one that decodes to no key of the list: keys reach SQL, and PostgreSQL refuses e.g.
    NUL characters."""

    limit: Limit = DEFAULT_LIMIT
    cursor: Annotated[str, Field(description="from the `next` link of a page")] = absent()

    @field_validator("cursor")
    @classmethod
    def _decodes_to_a_key(cls, text: str | None) -> str | None:
        if text is not None and decode_cursor(text, cls.is_key) is None:
            raise rule("not one this API returned; use the `next` link of a list")
        return text

    @staticmethod
    def is_key(text: str) -> bool:
        """Whether `text` is a key of the list (each list's own)."""
        raise NotImplementedError

    @property
    def after(self) -> str | None:
        """The key the page starts after; None for the first page."""
        return None if self.cursor is None else decode_cursor(self.cursor, self.is_key)


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode_cursor(text: str, is_key: Callable[[str], bool]) -> str | None:
    try:
        key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return key if key and encode_cursor(key) == text and is_key(key) else None


def next_link(path: str, limit: int, *, offset: int | None = None, cursor: str | None = None) -> str:
    params: dict[str, str | int] = {"limit": limit}
    if offset is not None:
        params["offset"] = offset
    if cursor is not None:
        params["cursor"] = encode_cursor(cursor)
    return f"{path}?{urlencode(params)}"


T = TypeVar("T")


class Page(Resource, Generic[T]):
    items: list[T]
    total: int = Field(ge=0)
    limit: int = Field(ge=1, le=MAX_LIMIT)
    next: str | None


class OffsetPage(Page[T], Generic[T]):
    offset: int = Field(ge=0, le=MAX_OFFSET)
