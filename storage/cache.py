"""Caches of what pulls read most: tag → digest, manifest bytes, registry and repository ids.

In-process memory by default (`MemoryBackend`), Redis when replicas must share it (cache_redis.py). Entries
keyed by digest never change, so they live long; tag entries live briefly, so a tag moved by
another process is seen within `tag_ttl` seconds, while this process drops its own entry at
once on every write. `SingleFlight` makes concurrent misses of one key share one backend read.

A manifest's bytes never change, but whether its repository still holds it does: another
process may delete it (a user DELETE, garbage collection). A shared cache (Redis) learns of
that at once: every deleting process drops the entry there. A cache of one process's memory
does not, so there an entry answers a pull *by digest* only for `tag_ttl` seconds after it was
loaded; after that the pull reads the manifest again (one row per hot manifest and second). A
pull by tag needs no such check: the tag, itself at most `tag_ttl` old, names the manifest, and
the database keeps no tag of a manifest that is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple, Protocol, TypeVar

from .health import StoreHealth
from .metadata import ManifestRecord, RegistryRecord

T = TypeVar("T")
_ABSENT = "-"  # cached "no such registry", so unknown hosts cost no query per request
_TAG_HIT, _TAG_MISS, _HIT, _MISS = ("tag", "hit"), ("tag", "miss"), ("manifest", "hit"), ("manifest", "miss")


class CacheBackend(Protocol):
    """What the cache asks of its store (aiocache's interface, which the Redis backend keeps):
    `add` raises ValueError when the key holds an entry already. A backend shared by all
    processes (every invalidation reaches it) says so with a true `shared` attribute."""

    async def get(self, key: str) -> Any: ...
    async def set(self, key: str, value: Any, ttl: float | None = None) -> Any: ...
    async def add(self, key: str, value: Any, ttl: float | None = None) -> Any: ...
    async def delete(self, key: str) -> Any: ...
    async def close(self) -> Any: ...


class MetadataCache:
    def __init__(
        self,
        backend: CacheBackend | None = None,
        *,
        tag_ttl: float = 1.0,
        manifest_ttl: float = 3600.0,
        registry_ttl: float = 1.0,
    ) -> None:
        self._backend = backend or MemoryBackend()
        # whether every process's invalidations reach this cache (Redis); else, by-digest
        # manifest entries are confirmed against the metadata store every `tag_ttl` seconds
        self.shared: bool = getattr(self._backend, "shared", False)
        self.health: StoreHealth | None = getattr(backend, "health", None)  # a shared cache's
        self.tag_ttl = tag_ttl
        self.manifest_ttl = manifest_ttl
        self.tombstone_ttl = 60.0  # longer than any read → fill gap of a live process
        self.registry_ttl = registry_ttl
        # for /metrics; a plain dict with its keys in place: bumped twice per manifest GET
        self.lookups: dict[tuple[str, ...], int] = dict.fromkeys((_TAG_HIT, _TAG_MISS, _HIT, _MISS), 0)

    async def get_registry(self, name: str) -> RegistryRecord | str | None:
        """The record, `None` if not cached, or `ABSENT` if known not to exist."""
        entry: RegistryRecord | str | None = await self._backend.get(f"r:{name}")
        return entry

    async def set_registry(self, name: str, record: RegistryRecord | None) -> None:
        await self._backend.set(f"r:{name}", record or _ABSENT, ttl=self.registry_ttl)

    async def get_repository_id(self, registry_id: str, repository: str) -> int | None:
        entry: int | None = await self._backend.get(f"i:{registry_id}:{repository}")
        return entry

    async def set_repository_id(self, registry_id: str, repository: str, repository_id: int) -> None:
        await self._backend.set(f"i:{registry_id}:{repository}", repository_id, ttl=self.manifest_ttl)

    async def get_tag(self, repository_id: int, tag: str) -> str | None:
        entry: str | None = await self._backend.get(f"t:{repository_id}:{tag}")
        self.lookups[_TAG_MISS if entry is None else _TAG_HIT] += 1
        return entry

    async def set_tag(self, repository_id: int, tag: str, digest: str) -> None:
        await self._backend.set(f"t:{repository_id}:{tag}", digest, ttl=self.tag_ttl)

    async def drop_tags(self, repository_id: int, tags: list[str]) -> None:
        for tag in tags:
            await self._backend.delete(f"t:{repository_id}:{tag}")

    async def get_manifest(
        self, repository_id: int, digest: str, *, tagged: bool = False
    ) -> ManifestRecord | None:
        """The cached manifest, or None. `tagged`: a tag read within `tag_ttl` named it, so the
        repository holds it; otherwise a process-local entry older than `tag_ttl` is a miss
        (another process may have deleted the manifest since: the module docstring)."""
        key = f"m:{repository_id}:{digest}"
        cached = await self._backend.get(key)
        if type(cached) is _Local:
            if tagged or cached.confirmed_until > time.monotonic():
                self.lookups[_HIT] += 1
                return cached.manifest
            await self._backend.delete(key)  # the reload that follows fills it again
        elif isinstance(cached, ManifestRecord):
            self.lookups[_HIT] += 1
            return cached
        self.lookups[_MISS] += 1
        return None

    async def set_manifest(self, repository_id: int, manifest: ManifestRecord) -> None:
        """Fill only if nothing is there: a reader that loaded the manifest just before another
        process deleted it must not put it back over the deletion's tombstone."""
        entry = manifest if self.shared else _Local(manifest, time.monotonic() + self.tag_ttl)
        with contextlib.suppress(ValueError):  # already cached, or deleted moments ago
            await self._backend.add(f"m:{repository_id}:{manifest.digest}", entry, ttl=self.manifest_ttl)

    async def drop_manifest(self, repository_id: int, digest: str) -> None:
        key = f"m:{repository_id}:{digest}"
        await self._backend.delete(key)
        await self._backend.set(key, _ABSENT, ttl=self.tombstone_ttl)

    async def close(self) -> None:
        await self._backend.close()


ABSENT = _ABSENT


class _Local(NamedTuple):
    """A manifest in a process-local cache, with until when (monotonic) its repository is known
    to hold it."""

    manifest: ManifestRecord
    confirmed_until: float


class MemoryBackend:
    """Entries in a dict, each with its deadline; an expired entry is dropped when read, and all
    of them whenever the dict has doubled since the last sweep (memory stays bounded by what is
    live). A manifest GET by tag makes four lookups here: aiocache's SimpleMemoryCache, used
    before, cost about a tenth of the request's CPU in its decorators (an environment variable
    read, a timeout wrapper and plugin hooks per call) and a timer per entry."""

    shared = False  # one process's: other processes' invalidations never reach it

    def __init__(self) -> None:
        self._entries: dict[str, tuple[Any, float]] = {}
        self._swept_at = 1024  # the size at which the next sweep runs

    async def get(self, key: str) -> Any:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[1] <= time.monotonic():
            del self._entries[key]
            return None
        return entry[0]

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        self._entries[key] = (value, time.monotonic() + ttl if ttl is not None else float("inf"))
        if len(self._entries) >= self._swept_at:
            self._sweep()

    async def add(self, key: str, value: Any, ttl: float | None = None) -> None:
        if await self.get(key) is not None:
            raise ValueError(f"key {key!r} already exists")
        await self.set(key, value, ttl)

    async def delete(self, key: str) -> None:
        self._entries.pop(key, None)

    async def close(self) -> None:
        self._entries.clear()

    def _sweep(self) -> None:
        now = time.monotonic()
        self._entries = {key: entry for key, entry in self._entries.items() if entry[1] > now}
        self._swept_at = max(1024, 2 * len(self._entries))


class SingleFlight:
    """Run one `load()` per key at a time; concurrent callers for the key await its result."""

    def __init__(self) -> None:
        self._inflight: dict[Any, asyncio.Future[Any]] = {}

    async def do(self, key: Any, load: Callable[[], Awaitable[T]]) -> T:
        future = self._inflight.get(key)
        if future is not None:
            return await asyncio.shield(future)
        future = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await load()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: there may be no other caller
            raise
        else:
            future.set_result(result)
            return result
        finally:
            del self._inflight[key]
