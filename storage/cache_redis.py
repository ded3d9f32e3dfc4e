"""The metadata cache in Redis, shared by replicas (aiocache's RedisCache over redis-py).

Entries are small tagged byte strings, not JSON or pickle: manifests are kept as their exact
bytes (no base64), and nothing read back from a shared server is ever unpickled. Keys carry a
format version, so replicas of different releases never misread each other's entries.

Redis is a cache, not a store: when a read or a fill fails (Redis down, slow, an entry in an
unknown format) the request goes on to the metadata store. Invalidations (`delete`) do raise,
since a write that could not drop its stale entry must not look like a clean success.
"""

from __future__ import annotations

import logging
import struct
import time
from dataclasses import astuple
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson
from aiocache import RedisCache
from aiocache.serializers import BaseSerializer
from redis.exceptions import RedisError

from .cache import MetadataCache
from .metadata import ManifestRecord, RegistryRecord

log = logging.getLogger(__name__)

NAMESPACE = "ocigate:1"  # bump when the entry format below changes
SOCKET_TIMEOUT = 1.0  # a cache slower than this is worse than the database behind it
_HEADER = struct.Struct(">I")


class RecordSerializer(BaseSerializer):
    """str, int, `RegistryRecord` and `ManifestRecord` ↔ bytes.

    `m` + header length + JSON [digest, media type, subject, artifact type, annotations length]
    + annotations + content; `r` + JSON of the record's fields; `s` + UTF-8; `i` + decimal.
    """

    DEFAULT_ENCODING = None  # values are bytes: redis-py hands them back undecoded

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
    """At most one warning per 30 s: an outage must not flood the log once per request."""
    global _last_warning
    now = time.monotonic()
    if now - _last_warning >= 30:
        _last_warning = now
        log.warning("redis cache: %s", message)


class _TolerantRedisCache(RedisCache):
    async def _get(self, key: str, encoding: str | None = None, _conn: Any = None) -> Any:
        try:
            return await super()._get(key, encoding=encoding, _conn=_conn)
        except RedisError as exc:
            _warn(f"read failed, going to the metadata store: {exc!r}")
            return None

    async def _set(self, key: str, value: Any, ttl: Any = None, **kwargs: Any) -> Any:
        try:
            return await super()._set(key, value, ttl=ttl, **kwargs)
        except RedisError as exc:
            _warn(f"fill failed: {exc!r}")
            return False

    async def _add(self, key: str, value: Any, ttl: Any = None, _conn: Any = None) -> Any:
        try:
            return await super()._add(key, value, ttl=ttl, _conn=_conn)
        except RedisError as exc:
            _warn(f"fill failed: {exc!r}")
            return False

    async def _close(self, *args: Any, _conn: Any = None, **kwargs: Any) -> None:
        await self.client.aclose()  # `close()` is deprecated in redis-py 5


def redis_backend(url: str) -> RedisCache:
    """aiocache's RedisCache for `redis://[[user]:password@]host[:port][/db]` (`rediss://`: TLS)."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ValueError("OCIGATE_REDIS_URL must be redis://[:password@]host[:port][/db] or rediss://…")
    db = parts.path.strip("/") or "0"
    pool_options: dict[str, Any] = {"socket_timeout": SOCKET_TIMEOUT}
    if parts.username:
        pool_options["username"] = unquote(parts.username)
    return _TolerantRedisCache(
        serializer=RecordSerializer(),
        namespace=NAMESPACE,
        timeout=None,  # no asyncio.wait_for (a task per call): the socket timeouts bound each call
        endpoint=parts.hostname,
        port=parts.port or 6379,
        db=int(db),
        password=unquote(parts.password) if parts.password else None,
        ssl=parts.scheme == "rediss",
        create_connection_timeout=SOCKET_TIMEOUT,
        connection_pool_kwargs=pool_options,
    )


async def open_redis_cache(url: str, **ttls: float) -> MetadataCache:
    """A `MetadataCache` in Redis; fails at start, with the reason, if Redis cannot be reached."""
    backend = redis_backend(url)
    try:
        await backend.client.ping()
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
