"""A registry over real stores for the collector's tests: push images, run collections, and
check that what is tagged is whole, and that the store holds nothing else."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ocigate.storage.blobs import BlobDriver
from ocigate.storage.blobs.filesystem import FilesystemBlobDriver
from ocigate.storage.cache import MetadataCache, SingleFlight
from ocigate.storage.collector import Collector, GcReport, Hook
from ocigate.storage.digest import Digest
from ocigate.storage.errors import ManifestUnknown
from ocigate.storage.manifests import parse_manifest
from ocigate.storage.metadata import MetadataStore, RegistryRecord
from ocigate.storage.metadata.engine import SqlEngine
from ocigate.storage.metadata.postgres import PostgresEngine
from ocigate.storage.metadata.sqlite import SqliteEngine
from ocigate.storage.registries import Registries
from ocigate.storage.registry import Registry
from tests.registry_client import image_manifest
from tests.storage.conftest import stored
from tests.storage.reading import read_all


async def chunks_of(content: bytes) -> AsyncIterator[bytes]:
    yield content


@dataclass
class World:
    """One "replica": its own metadata engine and driver over the shared database and store."""

    registries: Registries
    record: RegistryRecord

    @property
    def metadata(self) -> MetadataStore:
        return self.registries.metadata

    @property
    def registry(self) -> Registry:
        return self.registries.bind(self.record)

    def with_content(self, content: Any) -> Registry:
        """The registry served from another content store (a wrapper that pauses a step)."""
        registries = self.registries
        return Registry(
            self.record,
            content,
            registries.blobs,
            registries.cache,
            SingleFlight(),
            self.registry.uploads,
            registries.reads,
        )

    def collector(self, hook: Hook | None = None, batch: int = 200) -> Collector:
        registries = self.registries
        return Collector(
            self.metadata,
            registries.blobs,
            registries.cache,
            hook=hook,
            batch=batch,
            discard=registries.discard_cached_blob,
        )

    async def collect(self, *, grace: float = 0, untagged: bool = True, hook: Hook | None = None) -> GcReport:
        return await self.collector(hook).collect(self.record, grace=grace, untagged=untagged)

    async def push_blob(self, repository: str, content: bytes) -> str:
        digest = Digest.of(content)
        await self.registry.upload_blob(repository, digest, chunks_of(content), len(content))
        return str(digest)

    async def push_image(
        self, repository: str, tag: str | None, layers: Sequence[bytes], config: bytes
    ) -> bytes:
        for content in (config, *layers):
            await self.push_blob(repository, content)
        manifest = image_manifest(config, layers)
        reference = tag or str(Digest.of(manifest))
        await self.registry.put_manifest(repository, reference, manifest, None)
        return manifest

    async def assert_pullable(self, repository: str, reference: str) -> None:
        """The manifest and every blob it lists, read back and hashed."""
        manifest = await self.registry.get_manifest(repository, reference)
        parsed = parse_manifest(manifest.content, manifest.media_type)
        for child in parsed.children:
            await self.assert_pullable(repository, str(child.digest))
        for descriptor in parsed.blobs:
            blob = await self.registry.stat_blob(repository, descriptor.digest)
            content = await read_all(self.registries.blobs, blob.location, 0, blob.size)
            assert f"sha256:{hashlib.sha256(content).hexdigest()}" == str(descriptor.digest)

    async def assert_blob(self, repository: str, digest: Digest, content: bytes) -> None:
        blob = await self.registry.stat_blob(repository, digest)
        assert await read_all(self.registries.blobs, blob.location, 0, blob.size) == content

    async def absent(self, repository: str, reference: str) -> bool:
        try:
            await self.registry.get_manifest(repository, reference)
        except ManifestUnknown:
            return True
        return False

    async def stored_blobs(self) -> list[str]:
        """The locations of what the store holds besides staging (an S3 bucket: every object)."""
        found = await stored(self.registries.blobs)
        if isinstance(self.registries.blobs, FilesystemBlobDriver):
            return [name.removeprefix("blobs/") for name in found if name.startswith("blobs/")]
        return found

    async def locations(self) -> list[str]:
        """The locations the metadata names."""
        rows = await self.metadata.engine.fetchall("SELECT location FROM blobs ORDER BY location")
        return [row[0] for row in rows]


async def open_world(metadata: MetadataStore, driver: BlobDriver, name: str = "gc") -> World:
    registries = Registries(metadata, driver, MetadataCache())
    record = await registries.ensure(name)
    return World(registries, record)


_KEY = os.urandom(32)  # one blob key, so that "replicas" of a test read each other's files


def filesystem_driver(root: Path) -> FilesystemBlobDriver:
    return FilesystemBlobDriver(root / "store", _KEY)


async def another_engine(
    metadata: MetadataStore, request: pytest.FixtureRequest, tmp_path: Path
) -> MetadataStore:
    """A second process's view of the test's database: its own connections (SQLite: on the
    same file; PostgreSQL: a pool of its own), as another replica has."""
    engine: SqlEngine
    if isinstance(metadata.engine, PostgresEngine):
        engine = await PostgresEngine.open(request.getfixturevalue("postgres_url"))
    else:
        engine = await SqliteEngine.open(tmp_path / "metadata.db")
    return MetadataStore.over(engine)


def layer(seed: int, size: int = 2048) -> bytes:
    return hashlib.sha256(str(seed).encode()).digest() * (size // 32)


def config(seed: int) -> bytes:
    return b'{"architecture":"amd64","os":"linux","seed":%d}' % seed
