"""The SQL behind the management API, on every metadata engine (SQLite and PostgreSQL: the
`metadata` fixture of tests/storage/metadata_stores.py)."""

from __future__ import annotations

from ocigate.auth.store import CredentialStore
from ocigate.storage.metadata import BlobRecord, ManifestRecord, MetadataStore, ReferrerRecord

MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _digest(n: int) -> str:
    return f"sha256:{n:064x}"


async def _manifest(
    metadata: MetadataStore, registry_id: str, repository: str, n: int, tag: str | None
) -> str:
    digest = _digest(1000 + n)
    await metadata.content.put_manifest(registry_id, repository, ManifestRecord(digest, MANIFEST, b"{}"), tag)
    return digest


async def test_account_registries_page_by_name(metadata: MetadataStore) -> None:
    store = CredentialStore(metadata.engine)
    mine, theirs = await store.ensure_account("mine"), await store.ensure_account("theirs")
    for name in ("charlie", "alpha", "bravo"):
        await metadata.registries.create_registry(name, mine.id)
    await metadata.registries.create_registry("delta", theirs.id)
    registries = metadata.registries
    assert [r.name for r in await registries.list_account_registries(mine.id, 0, 2)] == ["alpha", "bravo"]
    assert [r.name for r in await registries.list_account_registries(mine.id, 2, 2)] == ["charlie"]
    assert await registries.count_account_registries(mine.id) == 3
    assert await registries.count_account_registries(theirs.id) == 1


async def test_storage_bytes_count_each_blob_once_per_registry(metadata: MetadataStore) -> None:
    one = await metadata.registries.create_registry("one")
    two = await metadata.registries.create_registry("two")
    await metadata.content.add_blob(one.id, "a", BlobRecord(_digest(1), 100, "x"))
    # the same blob in another repository
    await metadata.content.add_blob(one.id, "b", BlobRecord(_digest(1), 100, "x"))
    await metadata.content.add_blob(one.id, "b", BlobRecord(_digest(2), 20, "y"))
    await metadata.content.add_blob(two.id, "a", BlobRecord(_digest(3), 5, "z"))
    assert await metadata.views.registry_storage_bytes(one.id) == 120
    assert await metadata.views.registry_storage_bytes(two.id) == 5
    empty = await metadata.registries.create_registry("empty")
    assert await metadata.views.registry_storage_bytes(empty.id) == 0
    # all registries in one statement (metrics), and the store: each blob once for all of them
    await metadata.content.add_blob(two.id, "b", BlobRecord(_digest(1), 100, "x"))
    by_registry = await metadata.views.storage_bytes_by_registry()
    assert {name: by_registry[name] for name in ("one", "two", "empty")} == {
        "one": 120,
        "two": 105,
        "empty": 0,
    }
    assert await metadata.views.store_totals() == (3, 125)


async def test_repository_usage_lists_repositories_with_content(metadata: MetadataStore) -> None:
    registry = await metadata.registries.create_registry("usage")
    await _manifest(metadata, registry.id, "b/app", 1, "v1")
    await _manifest(metadata, registry.id, "b/app", 2, None)
    await metadata.content.add_blob(registry.id, "a-only-blob", BlobRecord(_digest(9), 1, "x"))
    await metadata.content.add_blob(registry.id, "B", BlobRecord(_digest(8), 1, "x"))
    listed = await metadata.views.list_repository_usage(registry.id, "", 10)
    assert [u.name for u in listed] == ["B", "a-only-blob", "b/app"]  # bytewise order
    assert [u.artifact_count for u in listed] == [0, 0, 2]
    after_b = await metadata.views.list_repository_usage(registry.id, "B", 1)
    assert [u.name for u in after_b] == ["a-only-blob"]
    assert await metadata.views.count_repositories_with_content(registry.id) == 3

    await metadata.views.add_repository_usage(registry.id, "b/app", 3, 1, 2000, 1000)
    await metadata.views.add_repository_usage(registry.id, "b/app", 2, 0, 1500, 0)  # times only move forward
    usage = await metadata.views.get_repository_usage(registry.id, "b/app")
    assert usage is not None
    assert (usage.pull_count, usage.push_count, usage.last_pull_at, usage.last_push_at) == (5, 1, 2000, 1000)
    await metadata.views.add_repository_usage(registry.id, "gone", 1, 1, 1, 1)  # no such repository: nothing
    assert await metadata.views.get_repository_usage(registry.id, "gone") is None


async def test_what_the_console_reads_search_sizes_and_referrers(metadata: MetadataStore) -> None:
    """Repositories by the start of their names (bytewise on every engine: '-', '.' and '/' sort
    apart, which an ICU collation would blur), their sizes, a page of registries counted at once,
    and artifacts with their push times and referrers."""
    registry = await metadata.registries.create_registry("console")
    empty = await metadata.registries.create_registry("console-empty")
    for name in ("teamx", "team/c", "tea", "team.d", "team/b", "team-a"):
        await _manifest(metadata, registry.id, name, 1, "v1")
    views = metadata.views

    async def names(after: str, prefix: str) -> list[str]:
        return [u.name for u in await views.list_repository_usage(registry.id, after, 10, prefix)]

    assert await names("", "team/") == ["team/b", "team/c"]
    assert await names("team/b", "team/") == ["team/c"]  # the next page
    assert await names("", "team") == ["team-a", "team.d", "team/b", "team/c", "teamx"]
    assert await names("", "teams") == []
    assert await views.count_repositories_with_content(registry.id, "team/") == 2
    assert await views.count_repositories_with_content(registry.id) == 6
    assert await views.count_repositories_of([registry.id, empty.id]) == {registry.id: 6, empty.id: 0}
    assert await views.count_repositories_of([]) == {}

    # a repository's size: its linked blobs and its manifests' bytes
    await metadata.content.add_blob(registry.id, "team/b", BlobRecord(_digest(7), 100, "x"))
    usage = await views.get_repository_usage(registry.id, "team/b")
    assert usage is not None
    assert usage.size == 100 + len(b"{}")

    # a signature of the tagged image refers to it; untagged, it was pushed when created
    image = _digest(1001)
    signature = ManifestRecord(
        _digest(2001), MANIFEST, b'{"sig":1}', subject=image, artifact_type="application/vnd.dev.cosign.sig"
    )
    await metadata.content.put_manifest(registry.id, "team/b", signature, None)
    repository_id = await metadata.content.get_repository_id(registry.id, "team/b")
    assert repository_id is not None
    referrers = await views.referrers_by_subject(repository_id, [image, _digest(9)])
    assert referrers == {
        image: [ReferrerRecord(signature.digest, MANIFEST, 9, "application/vnd.dev.cosign.sig", None)],
        _digest(9): [],
    }
    artifacts = {a.digest: a for a in await views.list_artifacts(repository_id, "", 10)}
    assert artifacts[signature.digest].pushed_at == artifacts[signature.digest].created_at
    tagged = artifacts[image]
    assert tagged.tags == ("v1",)
    assert tagged.pushed_at is not None
    assert tagged.pushed_at >= tagged.created_at


async def test_clearing_a_repository(metadata: MetadataStore) -> None:
    registry = await metadata.registries.create_registry("clear")
    first = await _manifest(metadata, registry.id, "app", 1, "v1")
    second = await _manifest(metadata, registry.id, "app", 2, "v2")
    await metadata.content.add_blob(registry.id, "app", BlobRecord(_digest(7), 10, "x"))
    await metadata.views.add_repository_usage(registry.id, "app", 4, 2, 10, 10)
    repository_id = await metadata.content.get_repository_id(registry.id, "app")
    assert repository_id is not None

    cleared = await metadata.content.clear_repository(registry.id, "app")
    assert cleared is not None
    assert cleared.repository_id == repository_id
    assert sorted(cleared.digests) == sorted([first, second])
    assert sorted(cleared.tags) == ["v1", "v2"]
    assert await metadata.content.get_manifest(repository_id, first) is None
    assert await metadata.content.get_tag(repository_id, "v1") is None
    assert await metadata.content.get_linked_blob(repository_id, _digest(7)) is None
    assert await metadata.views.get_repository_usage(registry.id, "app") is None
    assert await metadata.content.clear_repository(registry.id, "app") is None
    # the row stays (ids cached elsewhere stay valid) and starts from zero when pushed again
    assert await metadata.content.get_repository_id(registry.id, "app") == repository_id
    await _manifest(metadata, registry.id, "app", 3, "v3")
    usage = await metadata.views.get_repository_usage(registry.id, "app")
    assert usage is not None
    assert (usage.artifact_count, usage.pull_count, usage.push_count) == (1, 0, 0)


async def test_artifacts_with_their_tags(metadata: MetadataStore) -> None:
    registry = await metadata.registries.create_registry("artifacts")
    digests = [await _manifest(metadata, registry.id, "app", n, f"t{n}") for n in range(3)]
    also = ManifestRecord(digests[0], MANIFEST, b"{}")
    await metadata.content.put_manifest(registry.id, "app", also, "also")
    repository_id = await metadata.content.get_repository_id(registry.id, "app")
    assert repository_id is not None
    page = await metadata.views.list_artifacts(repository_id, "", 2)
    assert [a.digest for a in page] == sorted(digests)[:2]
    rest = await metadata.views.list_artifacts(repository_id, page[-1].digest, 2)
    assert [a.digest for a in rest] == sorted(digests)[2:]
    assert await metadata.views.count_artifacts(repository_id) == 3
    artifact = await metadata.views.get_artifact(repository_id, digests[0])
    assert artifact is not None
    assert artifact.tags == ("also", "t0")
    assert artifact.media_type == MANIFEST
    assert artifact.content == b"{}"
    assert artifact.created_at > 0
    assert await metadata.views.get_artifact(repository_id, _digest(5)) is None


async def test_audit_is_read_per_account(metadata: MetadataStore) -> None:
    store = CredentialStore(metadata.engine)
    for n in range(3):
        await store.audit(
            "alice", "registry.create", f"registries/{n}", "192.0.2.1", {"n": n}, account_id="a"
        )
    await store.audit("bob", "registry.create", "registries/x", None, account_id="b")
    await store.audit("cli", "user.create", "someone", None)  # no account: nobody's trail
    newest = await store.account_audit("a", limit=2)
    assert [e.target for e in newest] == ["registries/2", "registries/1"]
    assert newest[0].detail == {"n": 2}
    assert newest[0].address == "192.0.2.1"
    older = await store.account_audit("a", before_id=newest[-1].id, limit=2)
    assert [e.target for e in older] == ["registries/0"]
    assert await store.count_account_audit("a") == 3
    assert await store.account_audit("b", entry_id=newest[0].id) == []
    assert [e.actor for e in await store.account_audit("b")] == ["bob"]
