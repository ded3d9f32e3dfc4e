"""The connection-limit probe: open N connections from one client at once, hold them all, then
send one request on each and count the served ones and the refused ones (closed by the server
before answering). Not a Locust user: Locust's clients pool and retry connections."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


@dataclass(frozen=True)
class ConnectionCounts:
    opened: int
    served: int
    refused: int


async def _open(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    try:
        return await asyncio.wait_for(asyncio.open_connection(host, port), 10)
    except (TimeoutError, OSError):
        return None


async def _ask(pair: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None) -> bool:
    if pair is None:
        return False
    reader, writer = pair
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: probe\r\n\r\n")
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 10)
        return status.startswith(b"HTTP/1.1 200")
    except (TimeoutError, OSError):
        return False


async def probe_connections(
    targets: list[tuple[str, int]], count: int, settle: float = 1.0
) -> ConnectionCounts:
    """`count` connections spread round-robin over `targets`, all open before any is used."""
    pairs = await asyncio.gather(*(_open(*targets[i % len(targets)]) for i in range(count)))
    await asyncio.sleep(settle)  # let the server decide every slot (a Redis round trip each)
    served = await asyncio.gather(*(_ask(pair) for pair in pairs))
    for pair in pairs:
        if pair is not None:
            pair[1].close()
    opened = sum(pair is not None for pair in pairs)
    return ConnectionCounts(opened, sum(served), count - sum(served))


def run_probe(urls: list[str], count: int) -> ConnectionCounts:
    targets = []
    for url in urls:
        hostport = url.split("://", 1)[-1].split("/", 1)[0]
        host, _, port = hostport.rpartition(":")
        targets.append((host.strip("[]"), int(port)))
    return asyncio.run(probe_connections(targets, count))
