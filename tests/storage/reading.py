"""Reading a blob back whole in driver tests."""

from __future__ import annotations

from ocigate.storage.blobs import BlobDriver, SocketStretch


async def read_all(driver: BlobDriver, location: str, start: int, end: int) -> bytes:
    """Bytes [start, end) as `read` gives them; socket stretches are iterated, as a consumer
    without a socket of its own does (splicing is tested on its own)."""
    parts: list[bytes] = []
    async for chunk in driver.read(location, start, end):
        if isinstance(chunk, SocketStretch):
            parts.extend([bytes(piece) async for piece in chunk])
        else:
            parts.append(bytes(chunk))
    return b"".join(parts)
