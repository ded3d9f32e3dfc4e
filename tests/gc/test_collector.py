"""What the collector removes and what it keeps, on SQLite and PostgreSQL; the store (filesystem
and S3 on Ceph) holds exactly the bytes of what is still reachable afterwards."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from ocigate.storage.blobs import BlobDriver
from ocigate.storage.digest import Digest
from ocigate.storage.metadata import MetadataStore, collection
from tests.registry_client import OCI_INDEX, OCI_MANIFEST

from .world import config, filesystem_driver, layer, open_world


async def test_deleted_tag_frees_its_bytes_in_the_store(
    metadata: MetadataStore, blob_store: BlobDriver
) -> None:
    world = await open_world(metadata, blob_store)
    shared = layer(1)
    await world.push_image("app", "v1", [shared, layer(2)], config(1))
    await world.push_image("app", "v2", [shared, layer(3)], config(2))
    await world.push_image("other", "v1", [shared], config(3))
    await world.registry.delete_manifest("app", "v1")  # the tag only: the manifest stays

    kept = await world.collect(untagged=False)  # the registry's policy keeps untagged manifests
    assert (kept.manifests, kept.links, kept.blobs) == (0, 0, 0)
    assert len(await world.stored_blobs()) == 6

    report = await world.collect(untagged=True)
    assert (report.manifests, report.links, report.blobs) == (1, 2, 2)  # layer 2 and config 1
    assert report.bytes == len(layer(2)) + len(config(1))
    for repository, tag in (("app", "v2"), ("other", "v1")):
        await world.assert_pullable(repository, tag)
    # exactly the bytes of what is reachable: shared layer, layer 3, configs 2 and 3
    assert sorted(await world.stored_blobs()) == await world.locations()
    assert len(await world.locations()) == 4
    last = await world.collector().last_run(world.record.id)
    assert last is not None
    assert (last.manifests, last.links, last.blobs, last.bytes) == (
        1,
        2,
        2,
        report.bytes,
    )


async def test_grace_period_keeps_a_layer_waiting_for_its_manifest(
    metadata: MetadataStore, tmp_path: Path
) -> None:
    world = await open_world(metadata, filesystem_driver(tmp_path))
    digest = await world.push_blob("app", layer(7))  # its manifest is not pushed yet
    assert (await world.collect(grace=3600)).links == 0
    assert await world.registry.stat_blob("app", Digest.parse(digest))
    report = await world.collect(grace=0)
    assert (report.links, report.blobs) == (1, 1)
    assert await world.stored_blobs() == []


async def test_untagged_manifests_go_only_when_nothing_holds_them(
    metadata: MetadataStore, tmp_path: Path
) -> None:
    world = await open_world(metadata, filesystem_driver(tmp_path))
    amd = await world.push_image("app", None, [layer(1)], config(1))
    arm = await world.push_image("app", None, [layer(2)], config(2))
    index = orjson.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": str(Digest.of(m)), "size": len(m)} for m in (amd, arm)
            ],
        }
    )
    await world.registry.put_manifest("app", "multi", index, OCI_INDEX)
    subject = await world.push_image("app", "signed", [layer(3)], config(3))
    signature = orjson.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.signature",
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "digest": str(Digest.of(b"{}")),
                "size": 2,
            },
            "layers": [],
            "subject": {"mediaType": OCI_MANIFEST, "digest": str(Digest.of(subject)), "size": len(subject)},
        }
    )
    await world.push_blob("app", b"{}")
    await world.registry.put_manifest("app", str(Digest.of(signature)), signature, OCI_MANIFEST)

    # the index holds its children, the subject its referrer: nothing goes
    assert (await world.collect()).manifests == 0
    await world.assert_pullable("app", "multi")
    assert not await world.absent("app", str(Digest.of(signature)))

    # untagged, the index goes, then its children; the subject goes, then its referrer
    await world.registry.delete_manifest("app", "multi")
    await world.registry.delete_manifest("app", "signed")
    report = await world.collect()
    assert report.manifests == 5
    assert await world.stored_blobs() == []
    assert await world.locations() == []


async def test_a_second_collector_skips_while_one_runs(metadata: MetadataStore, tmp_path: Path) -> None:
    world = await open_world(metadata, filesystem_driver(tmp_path))
    await world.push_blob("app", layer(1))
    second: list[bool] = []

    async def meanwhile(step: str) -> None:
        if step == "links-read" and not second:
            other = await world.collect()
            second.append(other.skipped)

    report = await world.collect(hook=meanwhile)
    assert second == [True]
    assert not report.skipped
    assert report.links == 1


async def test_dry_run_removes_nothing(metadata: MetadataStore, tmp_path: Path) -> None:
    world = await open_world(metadata, filesystem_driver(tmp_path))
    await world.push_image("app", "v1", [layer(1)], config(1))
    await world.registry.delete_manifest("app", "v1")
    before = await world.stored_blobs()
    report = await world.collector().collect(world.record, grace=0, untagged=True, dry_run=True)
    assert report.dry_run
    assert report.manifests == 1
    assert await world.stored_blobs() == before
    assert await world.collector().last_run(world.record.id) is None


async def test_a_registry_with_images_can_be_deleted_and_its_blobs_collected(
    metadata: MetadataStore, tmp_path: Path
) -> None:
    """The references the collector relies on never block deleting a whole registry."""
    world = await open_world(metadata, filesystem_driver(tmp_path))
    await world.push_image("app", "v1", [layer(1), layer(2)], config(1))
    assert await metadata.registries.delete_registry(world.record.name)
    assert await metadata.registries.get_registry(world.record.name) is None
    assert len(await world.stored_blobs()) == 3
    await world.collector().sweep()  # no registry links them any more
    assert await world.stored_blobs() == []


async def test_candidates_are_walked_across_repository_pages_and_batches(
    metadata: MetadataStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The collector reads candidates one repository at a time, a page of repository ids at a
    time: with pages of 2 ids and batches of 3 rows, every cursor position is crossed."""
    monkeypatch.setattr(collection, "REPOSITORY_PAGE", 2)
    world = await open_world(metadata, filesystem_driver(tmp_path))
    for k in range(4):  # first, two full pages of repositories with nothing to collect
        await world.push_image(f"keep{k}", "v1", [layer(900 + k)], config(900 + k))
    for r in range(5):  # 5 repositories: 2 tagged images to keep, 2 untagged, 2 stray layers each
        for n in range(2):
            await world.push_image(f"app{r}", f"v{n}", [layer(100 * r + n)], config(100 * r + n))
            await world.push_image(f"app{r}", None, [layer(100 * r + 10 + n)], config(100 * r + 10 + n))
            await world.push_blob(f"app{r}", layer(100 * r + 20 + n))
    report = await world.collector(batch=3).collect(world.record, grace=0, untagged=True)
    # per repository: 2 manifests, their 4 links (layer and config) and the 2 stray layers
    assert (report.manifests, report.links, report.blobs) == (10, 30, 30)
    for r in range(5):
        for n in range(2):
            await world.assert_pullable(f"app{r}", f"v{n}")
    assert sorted(await world.stored_blobs()) == await world.locations()
    assert len(await world.locations()) == 20 + 8
