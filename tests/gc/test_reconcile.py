"""The reconciling scan: store objects no metadata knows (a process that died between writing a
blob and recording it) are deleted once old enough; live uploads and recorded blobs are not."""

from __future__ import annotations

import os

from ocigate.storage.blobs import BlobDriver
from ocigate.storage.digest import Digest
from ocigate.storage.metadata import MetadataStore

from .world import chunks_of, config, layer, open_world


async def test_objects_no_metadata_knows_are_deleted_and_nothing_else(
    metadata: MetadataStore, blob_store: BlobDriver
) -> None:
    world = await open_world(metadata, blob_store)
    await world.push_image("app", "v1", [layer(1)], config(1))
    # a commit whose process died before it recorded the blob
    orphan_id = os.urandom(16).hex()
    state = await blob_store.start_upload(orphan_id)
    state = await blob_store.write_upload(orphan_id, state, 0, chunks_of(layer(2)))
    orphan = await blob_store.commit_upload(
        orphan_id, state, len(layer(2)), f"sha256/00/{'0' * 64}.{orphan_id}"
    )
    # an upload in progress (on S3 its staged tail lives among the blobs)
    uploads = world.registry.uploads
    live = await uploads.start(world.record.id, "app")
    await uploads.append(world.record.id, "app", live.id, chunks_of(layer(3)))
    assert orphan in await world.stored_blobs()

    collector = world.collector()
    assert await collector.reconcile() == 0  # younger than an hour: maybe a commit in flight
    assert await collector.reconcile(older_than=0) == 1
    assert orphan not in await world.stored_blobs()
    assert set(await world.locations()) <= set(await world.stored_blobs())

    blob = await uploads.finish(world.record.id, "app", live.id, Digest.of(layer(3)), None)
    await world.assert_blob("app", Digest.of(layer(3)), layer(3))
    await world.assert_pullable("app", "v1")
    assert blob.size == len(layer(3))
    assert await collector.reconcile(older_than=0) == 0
    assert sorted(await world.stored_blobs()) == await world.locations()
