"""The metadata cache in Redis, shared by replicas (redis-py).

Entries are small tagged byte strings, not JSON or pickle: manifests are kept as their exact
bytes (no base64), and nothing read back from a shared server is ever unpickled. Keys carry a
format version, so replicas of different releases never misread each other's entries.

Redis is a cache, not a store: no request fails because of it. While it is down (or slower
than `SOCKET_TIMEOUT`) reads miss, fills and invalidations are skipped, and the request is
answered from the metadata store; the outage is logged once and counted (`/metrics`), and a
background probe watches for Redis to answer again.

What was written meanwhile must not be served stale once Redis is back, although the
invalidations of those writes never reached it: every entry carries the *generation* it was
written in, a counter in Redis read together with the entry (one MGET), and an entry of another
generation is a miss. A process that saw an outage increments the generation when Redis
answers again, before it uses the cache, so every entry from before the outage is ignored by
every replica from then on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from dataclasses import astuple
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .cache import MetadataCache
from .health import StoreHealth
from .metadata import ManifestRecord, RegistryRecord

log = logging.getLogger(__name__)

NAMESPACE = "ocigate:2"  # bump when the entry format below changes
SOCKET_TIMEOUT = 1.0  # a cache slower than this is worse than the database behind it
PROBE_INTERVAL = 1.0  # seconds between tries to reach Redis again after it failed
_GENERATION = f"{NAMESPACE}:generation"
_STAMP = struct.Struct(">Q")  # the generation an entry was written in, before its bytes
_HEADER = struct.Struct(">I")


class RecordSerializer:
    """str, int, `RegistryRecord` and `ManifestRecord` ↔ bytes.

    `m` + header length + JSON [digest, media type, subject, artifact type, annotations length]
    + annotations + content; `r` + JSON of the record's fields; `s` + UTF-8; `i` + decimal.
    """

    def dumps(self, value: Any) -> bytes:
        if isinstance(value, ManifestRecord):
            annotations = value.annotations
            header = orjson.dumps(
                [
                    value.digest,
                    value.media_type,
                    value.subject,
                    value.artifact_type,
                    None if annotations is None else len(annotations),
                ]
            )
            return b"".join((b"m", _HEADER.pack(len(header)), header, annotations or b"", value.content))
        if isinstance(value, RegistryRecord):
            return b"r" + orjson.dumps(astuple(value))
        if isinstance(value, str):
            return b"s" + value.encode()
        if isinstance(value, int):
            return b"i" + str(value).encode()
        raise TypeError(f"cannot cache a {type(value).__name__}")

    def loads(self, value: bytes | None) -> Any:
        if value is None:
            return None
        try:
            return _loads(value)
        except (ValueError, TypeError, struct.error) as exc:
            _warn(f"unreadable cache entry ignored: {exc!r}")
            return None


def _loads(value: bytes) -> Any:
    kind, body = value[:1], memoryview(value)[1:]
    if kind == b"m":
        (size,) = _HEADER.unpack_from(body)
        start = _HEADER.size + size
        header = orjson.loads(body[_HEADER.size : start])
        digest, media_type, subject, artifact_type, annotations_size = header
        annotations = None
        if annotations_size is not None:
            annotations = bytes(body[start : start + annotations_size])
            start += annotations_size
        return ManifestRecord(digest, media_type, bytes(body[start:]), subject, artifact_type, annotations)
    if kind == b"r":
        return RegistryRecord(*orjson.loads(body))
    if kind == b"s":
        return str(body, "utf-8")
    if kind == b"i":
        return int(bytes(body))
    raise ValueError(f"unknown entry kind {kind!r}")


_last_warning = 0.0


def _warn(message: str) -> None:
    """At most one warning per 30 s: entries in an unknown format must not flood the log."""
    global _last_warning
    now = time.monotonic()
    if now - _last_warning >= 30:
        _last_warning = now
        log.warning("redis cache: %s", message)


# Fill only if the key holds no entry of this generation (a tombstone included); an entry of
# another generation is as good as none.
_ADD = """
local old = redis.call('GET', KEYS[1])
if old and string.sub(old, 1, 8) == string.sub(ARGV[1], 1, 8) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""


class RedisCacheBackend:
    """get / set / add / delete / close, as the metadata cache asks of its backend."""

    shared = True  # every replica's invalidations reach it

    def __init__(self, client: aioredis.Redis, probe_interval: float = PROBE_INTERVAL) -> None:
        self._client = client
        self._serializer = RecordSerializer()
        self._add = client.register_script(_ADD)
        self._probe_interval = probe_interval
        self._generation = 0  # as last read from Redis (`start` reads it first)
        self._probe: asyncio.Task[None] | None = None
        # no settling: the probe decides when Redis is back (and bumps the generation first)
        self.health = StoreHealth("cache", "requests go to the metadata store until Redis answers", settle=0)

    @property
    def up(self) -> bool:
        return self.health.up

    async def start(self) -> None:
        """Read the generation; raises RedisError if Redis cannot be reached."""
        self._generation = int(await self._client.get(_GENERATION) or 0)

    async def get(self, key: str) -> Any:
        if not self.up:
            return None
        try:
            generation, raw = await self._client.mget(_GENERATION, _key(key))
        except RedisError as exc:
            self._failed(exc)
            return None
        self._generation = int(generation or 0)
        if (
            not isinstance(raw, bytes)
            or len(raw) < _STAMP.size
            or _STAMP.unpack_from(raw)[0] != self._generation
        ):
            return None
        return self._serializer.loads(raw[_STAMP.size :])

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        if self.up:
            try:
                await self._client.set(_key(key), self._entry(value), px=_milliseconds(ttl))
            except RedisError as exc:
                self._failed(exc)

    async def add(self, key: str, value: Any, ttl: float | None = None) -> None:
        """As `set`, unless the key holds an entry of this generation: then ValueError."""
        if not self.up:
            return
        try:
            added = await self._add(keys=[_key(key)], args=[self._entry(value), _milliseconds(ttl) or 0])
        except RedisError as exc:
            self._failed(exc)
            return
        if not added:
            raise ValueError(f"{key} is cached already")

    async def delete(self, key: str) -> None:
        """An invalidation that does not reach Redis is made good by the generation, once Redis
        answers again (the module docstring)."""
        if self.up:
            try:
                await self._client.delete(_key(key))
            except RedisError as exc:
                self._failed(exc)

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
        await self._client.aclose()

    def _entry(self, value: Any) -> bytes:
        return _STAMP.pack(self._generation) + self._serializer.dumps(value)

    def _failed(self, exc: RedisError) -> None:
        if self.health.failed(exc):
            self._probe = asyncio.get_running_loop().create_task(self._wait_until_back())

    async def _wait_until_back(self) -> None:
        """Until Redis answers: then a new generation, so that nothing from before is served."""
        while True:
            await asyncio.sleep(self._probe_interval)
            try:
                generation = await self._client.incr(_GENERATION)
            except RedisError:
                continue
            self._generation, self._probe = generation, None
            self.health.answered(f"cache entries from before are ignored (generation {generation})")
            return


def _key(key: str) -> str:
    return f"{NAMESPACE}:{key}"


def _milliseconds(ttl: float | None) -> int | None:
    return None if ttl is None else max(1, round(ttl * 1000))


def check_redis_url(url: str) -> SplitResult:
    """`redis://[[user]:password@]host[:port][/db]` or `rediss://…` (TLS), split."""
    parts = urlsplit(url)
    db = parts.path.strip("/")
    if parts.scheme not in ("redis", "rediss") or not parts.hostname or not (db == "" or db.isdigit()):
        raise ValueError("must be redis://[[user]:password@]host[:port][/db] or rediss://… (TLS)")
    return parts


def redis_client(url: str) -> aioredis.Redis:
    """A client of `redis://[[user]:password@]host[:port][/db]` (`rediss://`: TLS)."""
    try:
        parts = check_redis_url(url)
    except ValueError as exc:
        raise ValueError(f"the Redis URL {exc}") from None
    db = parts.path.strip("/") or "0"
    return aioredis.Redis(
        host=parts.hostname or "",  # check_redis_url refused a URL without one
        port=parts.port or 6379,
        db=int(db),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        ssl=parts.scheme == "rediss",
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=SOCKET_TIMEOUT,
    )


async def open_redis_cache(url: str, **ttls: float) -> MetadataCache:
    """A `MetadataCache` in Redis; fails at start, with the reason, if Redis cannot be reached."""
    backend = RedisCacheBackend(redis_client(url))
    try:
        await backend.start()
    except RedisError as exc:
        await backend.close()
        raise RuntimeError(f"cannot reach Redis at {_without_password(url)}: {exc}") from exc
    return MetadataCache(backend, **ttls)


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username or ''}:***@{host}").geturl()
