"""HTTP details shared by the handlers: body streaming, ranges, pagination."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from ocigate.storage.errors import BlobUploadInvalid, PaginationInvalid, RegistryError, RequestBodyTimeout

BODY_TIMEOUT = web.AppKey("body_timeout", float)  # OCIGATE_BODY_TIMEOUT
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
    """The request body as it arrives: Content-Length or chunked, never read whole. A client
    that sends nothing for `BODY_TIMEOUT` seconds while it is waited for fails the request
    (RequestBodyTimeout, 408); a slow one that keeps sending does not (no total limit)."""
    if not request.body_exists:
        # aiohttp's empty body is one shared reader, at its end once any request read it: its
        # chunk iterator then never stops
        return
    seconds = request.app[BODY_TIMEOUT]
    chunks = request.content.iter_chunks()  # as received: iter_any() joins them
    if seconds <= 0:
        async for chunk, _ in chunks:
            yield chunk
        return
    watch = _IdleWatch(seconds)
    try:
        while True:
            watch.waiting()
            try:
                chunk, _ = await anext(chunks)
            except StopAsyncIteration:
                return
            except asyncio.CancelledError:
                if watch.expired and watch.uncancel() == 0:
                    raise RequestBodyTimeout({"idle_seconds": seconds}) from None
                raise
            watch.received()
            yield chunk  # the consumer's time (e.g. a store's) is not the client's
    finally:
        watch.stop()


class _IdleWatch:
    """Cancels the task reading a body once it has waited `seconds` for a byte: one timer per
    period rather than one per chunk (asyncio.timeout costs a timer each time)."""

    def __init__(self, seconds: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._seconds = seconds
        self._since: float | None = None  # when the current wait for the client began
        self.expired = False
        self._timer = self._loop.call_later(seconds, self._check)

    def waiting(self) -> None:
        self._since = self._loop.time()

    def received(self) -> None:
        self._since = None

    def _check(self) -> None:
        now = self._loop.time()
        due = now + self._seconds if self._since is None else self._since + self._seconds
        if now < due:
            self._timer = self._loop.call_at(due, self._check)
            return
        self.expired = True
        assert self._task is not None
        self._task.cancel()

    def uncancel(self) -> int:
        assert self._task is not None
        return self._task.uncancel()

    def stop(self) -> None:
        self._timer.cancel()


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
