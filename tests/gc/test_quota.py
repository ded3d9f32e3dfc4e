"""A registry's storage quota (`storageQuotaBytes`): a push that would pass it is refused with
403 DENIED saying the quota and the usage, before its bytes are stored where the size is known;
deleting and collecting brings the registry back under it."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from ocigate.storage.digest import Digest
from ocigate.storage.errors import QuotaExceeded
from ocigate.storage.metadata import MetadataStore

from .world import chunks_of, config, filesystem_driver, layer, open_world


async def test_pushes_past_the_quota_are_refused_until_garbage_is_collected(
    metadata: MetadataStore, tmp_path: Path
) -> None:
    world = await open_world(metadata, filesystem_driver(tmp_path))
    quota = len(layer(1)) + len(config(1)) + 100
    updated = await metadata.registries.update_registry(
        world.record.id, orjson.dumps({"storageQuotaBytes": quota}).decode()
    )
    assert updated is not None
    world.record = updated
    await world.push_image("app", "v1", [layer(1)], config(1))
    await world.push_blob("other", layer(1))  # held already: adds nothing to the usage

    with pytest.raises(QuotaExceeded) as refused:  # monolithic, refused before a byte is stored
        await world.push_blob("app", layer(2))
    assert refused.value.status == 403
    assert refused.value.code == "DENIED"
    assert f"may store {quota} bytes" in refused.value.message
    # a chunked upload is refused at its end, and what it staged is gone
    uploads = world.registry.uploads
    session = await world.registry.start_upload("app")
    await uploads.append(world.record.id, "app", session.id, chunks_of(layer(2) + layer(3)))
    with pytest.raises(QuotaExceeded):
        await world.registry.finish_upload("app", session.id, Digest.of(layer(2) + layer(3)), None, None)
    assert sorted(await world.stored_blobs()) == await world.locations()

    await world.registry.delete_manifest("app", "v1")
    await world.registry.delete_blob("other", Digest.of(layer(1)))
    await world.collect()
    await world.push_image("app", "v2", [layer(2)], config(2))  # room again
    await world.assert_pullable("app", "v2")
