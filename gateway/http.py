"""HTTP details shared by the handlers: body streaming, ranges, pagination."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from ocigate.storage.errors import BlobUploadInvalid, PaginationInvalid, RegistryError

MAX_PAGE = 10_000
_RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)")
_CONTENT_RANGE_RE = re.compile(r"(?:bytes[= ])?(\d+)-(\d+)(?:/(?:\d+|\*))?")


class RangeNotSatisfiable(RegistryError):
    code, status, message = "RANGE_INVALID", 416, "requested range not satisfiable"


@dataclass(frozen=True, slots=True)
class ByteRange:
    start: int
    end: int  # exclusive

    @property
    def length(self) -> int:
        return self.end - self.start


async def body_chunks(request: web.Request) -> AsyncIterator[bytes]:
    """The request body as it arrives: Content-Length or chunked, never read whole."""
    async for chunk, _ in request.content.iter_chunks():  # as received: iter_any() joins them
        yield chunk


def has_body(request: web.Request) -> bool:
    return bool(request.content_length) or request.headers.get("Transfer-Encoding", "").lower() == "chunked"


def parse_read_range(header: str | None, size: int) -> ByteRange | None:
    """A single `Range: bytes=…` for a blob GET; None means the whole blob (RFC 9110 §14)."""
    if header is None:
        return None
    match = _RANGE_RE.fullmatch(header.strip())
    unsatisfiable = RangeNotSatisfiable(header, headers={"Content-Range": f"bytes */{size}"})
    if match is None or match.groups() == ("", ""):
        raise unsatisfiable
    first, last = match.groups()
    if first == "":  # suffix range: the last N bytes
        length = int(last)
        if length == 0 or size == 0:
            raise unsatisfiable
        return ByteRange(max(size - length, 0), size)
    start = int(first)
    end = size if last == "" else min(int(last) + 1, size)
    if start >= size or (last != "" and int(last) < start):
        raise unsatisfiable
    return ByteRange(start, end)


def parse_content_range(header: str | None) -> tuple[int, int] | None:
    """A PATCH's `Content-Range: <start>-<end>` (inclusive; oras omits the `bytes=`)."""
    if header is None:
        return None
    match = _CONTENT_RANGE_RE.fullmatch(header.strip())
    if match is None:
        raise BlobUploadInvalid(header, message="malformed Content-Range")
    start, end = int(match.group(1)), int(match.group(2))
    if end < start:
        raise BlobUploadInvalid(header, message="Content-Range ends before it starts")
    return start, end


def page_parameters(request: web.Request) -> tuple[str, int | None]:
    """`n` and `last` of a tag or catalog listing (OCI spec, "Listing tags")."""
    last = request.query.get("last", "")
    n = request.query.get("n")
    if n is None or n == "":
        return last, None
    if not n.isdigit():
        raise PaginationInvalid(n)
    return last, min(int(n), MAX_PAGE)


def next_link(path: str, limit: int, last: str) -> str:
    from urllib.parse import urlencode

    return f'<{path}?{urlencode({"n": limit, "last": last})}>; rel="next"'
