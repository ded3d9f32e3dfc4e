"""The body of an S3 upload request (a part, a tail, a small blob), held and sent without copies.

An upload holds one part in memory while it is filled (`PartBuffer`: an anonymous mmap, reused
for every part of a request); botocore sends a `PartBody` over those bytes in place, which
aiohttp writes to the socket in slices (`PartPayload`). Bodies are not SHA-256 signed (that
would hash them on the event loop): their Content-MD5 (`md5`) guards them in transit.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import mmap
from typing import Any

import aiohttp
import aiohttp.payload

__all__ = ["SEND_PIECE", "PartBody", "PartBuffer", "md5", "md5_base64"]

SEND_PIECE = 256 * 1024  # slices of a part handed to the socket at a time


class PartBuffer:
    """The part being filled, in an anonymous mmap of exactly the part size: outside malloc, so
    many concurrent uploads neither grow nor fragment the heap (a growing BytesIO reallocates to
    1/8 over its size); reused for every part of a request, and only written pages are resident."""

    def __init__(self, capacity: int) -> None:
        self._map = mmap.mmap(-1, capacity)
        self._view = memoryview(self._map)
        self.size = 0

    @property
    def full(self) -> bool:
        return self.size == len(self._view)

    def fill(self, data: memoryview) -> memoryview:
        """Copy in as much of `data` as fits; returns the rest."""
        count = min(len(data), len(self._view) - self.size)
        self._view[self.size : self.size + count] = data[:count]
        self.size += count
        return data[count:]

    def body(self) -> PartBody:
        return PartBody(self._view[: self.size])

    def clear(self) -> None:
        self.size = 0

    def close(self) -> None:
        # a send cut short may still hold a slice: the mapping then goes when that is collected
        with contextlib.suppress(BufferError):
            self._view.release()
            self._map.close()


class PartBody:
    """A request body over bytes in place: botocore sizes it (len) and rewinds it for a retry
    (seek); aiohttp sends it as slices (PartPayload), never copying it in user space."""

    def __init__(self, view: memoryview) -> None:
        self.view = view
        self._position = 0

    def __len__(self) -> int:
        return len(self.view)

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._position, 2: len(self.view)}[whence]
        self._position = base + offset
        return self._position

    def tell(self) -> int:
        return self._position

    def read(self, size: int = -1) -> bytes:
        end = len(self.view) if size < 0 else min(len(self.view), self._position + size)
        data = bytes(self.view[self._position : end])
        self._position = end
        return data


class PartPayload(aiohttp.payload.Payload):
    _value: PartBody

    def __init__(self, value: PartBody, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("content_type", "application/octet-stream")
        super().__init__(value, *args, **kwargs)
        self._size = len(value)

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return bytes(self._value.view).decode(encoding, errors)

    async def write(self, writer: Any) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(self, writer: Any, content_length: int | None) -> None:
        view = self._value.view[:content_length]
        for start in range(0, len(view), SEND_PIECE):
            await writer.write(view[start : start + SEND_PIECE])  # drains past its buffer limit


aiohttp.payload.register_payload(PartPayload, PartBody, order=aiohttp.payload.Order.try_first)


async def md5(data: memoryview) -> str:
    """Content-MD5 of a body, hashed off the event loop when big (hashlib releases the GIL):
    bodies are not SHA-256 signed, so this is what guards them in transit."""
    if data.nbytes >= 256 * 1024:
        return await asyncio.to_thread(md5_base64, data)
    return md5_base64(data)


def md5_base64(data: bytes | memoryview) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
