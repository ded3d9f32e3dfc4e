"""Concurrent blob GETs through gateways on S3, every body checked: the large-read stress of
issue 16 A, shared by the suite's test (tests/gateway/test_s3_read_stress.py, a size CI can
afford) and the benchmark run (loadtests/bench/stress_s3_reads.py, 10,000 GETs).

Large blobs (from 8 MiB) go through the take-over path of the S3 driver (storage/blobs/
s3_body.py); small ones are read through aiohttp and give their pooled S3 connections back,
which the large reads then reuse: the mix that cut bodies short before the fix.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import xxhash

MIB = 1 << 20
REPOSITORY = "stress/s3-reads"
READ = 256 * 1024


@dataclass(frozen=True)
class Blob:
    content: bytes = field(repr=False)
    digest: str
    check: bytes  # xxh3-128 of the content: a full check of every body at little CPU

    @classmethod
    def make(cls, size: int, rng: random.Random) -> Blob:
        content = rng.randbytes(size)
        return cls(content, f"sha256:{hashlib.sha256(content).hexdigest()}", xxhash.xxh3_128_digest(content))

    @property
    def size(self) -> int:
        return len(self.content)


def blob_set(large: list[int], small: list[int], seed: int) -> list[Blob]:
    """Blobs of the given sizes in MiB plus a few odd bytes, deterministic for `seed`."""
    rng = random.Random(seed)
    return [Blob.make(mib * MIB + rng.randrange(1, 4096), rng) for mib in (*large, *small)]


@dataclass
class Tally:
    gets: int = 0
    exact: int = 0
    short: int = 0  # fewer bytes than the blob (cut connection or early end)
    wrong: int = 0  # all bytes there but other ones
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)  # non-200
    errors: collections.Counter[str] = field(default_factory=collections.Counter)  # client-side
    seconds: float = 0.0
    bytes: int = 0

    @property
    def failed(self) -> int:
        return self.gets - self.exact

    def summary(self) -> str:
        rate = self.bytes / MIB / self.seconds if self.seconds else 0.0
        return (
            f"{self.gets} GETs in {self.seconds:.1f} s ({rate:.0f} MiB/s): {self.exact} exact, "
            f"{self.short} short, {self.wrong} wrong bytes, statuses {dict(self.statuses)}, "
            f"errors {dict(self.errors)}"
        )


async def push(session: aiohttp.ClientSession, url: str, blob: Blob) -> None:
    async def pieces() -> AsyncIterator[bytes]:  # a large bytes body would be sent in one go
        for start in range(0, blob.size, MIB):
            yield blob.content[start : start + MIB]

    async with session.post(
        f"{url}/v2/{REPOSITORY}/blobs/uploads/",
        params={"digest": blob.digest},
        data=pieces(),
        headers={"Content-Type": "application/octet-stream", "Content-Length": str(blob.size)},
    ) as response:
        if response.status != 201:
            raise RuntimeError(f"push of {blob.digest}: {response.status} {await response.text()}")


async def get_checked(session: aiohttp.ClientSession, url: str, blob: Blob, tally: Tally) -> None:
    received = 0
    hasher = xxhash.xxh3_128()
    try:
        async with session.get(f"{url}/v2/{REPOSITORY}/blobs/{blob.digest}") as response:
            if response.status != 200:
                tally.statuses[response.status] += 1
                await response.read()
                return
            async for piece in response.content.iter_chunked(READ):
                received += len(piece)
                hasher.update(piece)
    except (aiohttp.ClientError, TimeoutError) as exc:  # a cut connection: the body is short
        tally.errors[type(exc).__name__] += 1
    finally:
        tally.bytes += received
    if received != blob.size:
        tally.short += 1
    elif hasher.digest() != blob.check:
        tally.wrong += 1
    else:
        tally.exact += 1


async def stress(
    session: aiohttp.ClientSession, urls: list[str], blobs: list[Blob], gets: int, concurrency: int, seed: int
) -> Tally:
    """`gets` GETs of blobs drawn at random (seeded), round-robin over the gateways at `urls`,
    `concurrency` at a time."""
    rng = random.Random(seed)
    plan = [(urls[n % len(urls)], rng.choice(blobs)) for n in range(gets)]
    tally = Tally(gets=gets)
    queue = iter(plan)

    async def worker() -> None:
        for url, blob in queue:  # a shared iterator: each GET taken once
            await get_checked(session, url, blob, tally)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    tally.seconds = time.perf_counter() - started
    return tally


def client_session(authorization: str | None = None) -> aiohttp.ClientSession:
    """No total timeout (a large body on a busy machine takes what it takes); a body that stops
    for a minute is counted short."""
    return aiohttp.ClientSession(
        headers={"Authorization": authorization} if authorization else None,
        connector=aiohttp.TCPConnector(limit=0),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=60),
    )
