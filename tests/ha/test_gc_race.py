"""Garbage collection at grace 0 racing pushes over HTTP on two replicas (separate processes)
over Ceph RGW and PostgreSQL: a randomized (fixed seed, bounded) mix of pushes of images sharing
layers, cross-repository mounts, tag moves and deletes against both replicas while `ocigate gc
--grace 0` runs again and again beside them. Then every tagged manifest pulls whole with the
right digests from both replicas (a sample with skopeo too), and after a last collection the
bucket holds exactly the bytes of what is still reachable."""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Clients
from tests.e2e.images import blob_digests, tagged_descriptor
from tests.registry_client import RegistryClient, digest_of, image_manifest
from tests.servers import ADMIN_PASSWORD, ADMIN_USER, ocigate

from .conftest import Replicas, s3_client

SEED = 1414
WORKERS = 4  # two on each replica
OPERATIONS = 10  # per worker
REPOSITORIES = ["race/app", "race/lib"]
CREDS = f"{ADMIN_USER}:{ADMIN_PASSWORD}"


def _push(client: RegistryClient, repository: str, tag: str, layers: list[bytes], config: bytes) -> bytes:
    """Blobs (a layer mounted from another repository where one has it), then the manifest; a
    manifest refused with MANIFEST_BLOB_UNKNOWN (a collection took a blob meanwhile) is pushed
    again with its blobs, as clients do."""
    manifest = image_manifest(config, layers)
    source = REPOSITORIES[1 - REPOSITORIES.index(repository)]
    for _ in range(30):
        for blob in (config, *layers):
            mounted = client.request(
                "POST",
                f"/v2/{repository}/blobs/uploads/",
                params={"mount": digest_of(blob), "from": source},
            )
            if mounted.status_code != 201:  # not there (202: upload instead)
                client.push_blob(repository, blob)
        put = client.request(
            "PUT",
            f"/v2/{repository}/manifests/{tag}",
            data=manifest,
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        )
        if put.status_code == 201:
            return manifest
        assert put.status_code == 400, put.text
        assert put.json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"
    raise AssertionError("the push lost to the collector 30 times in a row")


def _assert_pullable(client: RegistryClient, repository: str, tag: str, manifest: bytes) -> None:
    got = client.request("GET", f"/v2/{repository}/manifests/{tag}")
    assert got.status_code == 200, got.text
    assert got.content == manifest
    parsed: dict[str, Any] = got.json()
    for descriptor in (parsed["config"], *parsed["layers"]):
        blob = client.request("GET", f"/v2/{repository}/blobs/{descriptor['digest']}")
        assert blob.status_code == 200, blob.text
        assert digest_of(blob.content) == descriptor["digest"]


@pytest.mark.e2e
def test_pushes_mounts_tag_moves_and_deletes_racing_gc_on_two_replicas(
    replicas: Replicas, clients: Clients, tmp_path: Path
) -> None:
    env, data_dir = replicas.a.env, replicas.a.data_dir
    ocigate("registry", "update", "default", "--delete-untagged", "on", data_dir=data_dir, env=env)
    rng = random.Random(SEED)
    pool = [rng.randbytes(4096) for _ in range(6)]  # images share layers
    plans = []
    for worker in range(WORKERS):
        plan = []
        for serial in range(OPERATIONS):
            kind = rng.choices(["push", "untag", "delete"], weights=[6, 1, 1])[0]
            layers = [pool[i] for i in rng.sample(range(len(pool)), rng.randint(1, 3))]
            config = b'{"architecture":"amd64","os":"linux","serial":"%d-%d"}' % (worker, serial)
            plan.append((kind, rng.choice(REPOSITORIES), f"w{worker}-{rng.randint(0, 2)}", layers, config))
        plans.append(plan)
    expected: dict[tuple[str, str], bytes | None] = {}
    failures: list[BaseException] = []
    done, collected = threading.Event(), threading.Event()

    def work(worker: int) -> None:
        client = replicas.client(replicas.gateways[worker % 2])
        try:
            for serial, (kind, repository, tag, layers, config) in enumerate(plans[worker]):
                if serial == OPERATIONS // 2:  # half of the plan runs after a whole collection
                    assert collected.wait(120), "no collection finished in 120 s"
                key = (repository, tag)
                if kind == "push":  # a new image, or a tag moved to a new image
                    expected[key] = _push(client, repository, tag, layers, config)
                elif expected.get(key) is not None:
                    reference = tag if kind == "untag" else digest_of(expected[key] or b"")
                    answer = client.request("DELETE", f"/v2/{repository}/manifests/{reference}")
                    assert answer.status_code == 202, answer.text
                    expected[key] = None
        except BaseException as exc:
            failures.append(exc)

    runs: list[str] = []

    def collect() -> None:
        try:
            while not done.is_set():
                runs.append(ocigate("gc", "--grace", "0", data_dir=data_dir, env=env))
                collected.set()
        except BaseException as exc:
            failures.append(exc)

    collector = threading.Thread(target=collect)
    collector.start()
    workers = [threading.Thread(target=work, args=(worker,)) for worker in range(WORKERS)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    done.set()
    collector.join()
    assert failures == []
    assert runs  # at least one whole collection while the workers pushed (and one started after)

    ocigate("gc", "--grace", "0", data_dir=data_dir, env=env)  # a last, quiet one
    reachable: dict[str, int] = {}
    for (repository, tag), manifest in sorted(expected.items()):
        for gateway in replicas.gateways:
            client = replicas.client(gateway)
            if manifest is None:
                assert client.request("GET", f"/v2/{repository}/manifests/{tag}").status_code == 404
            else:
                _assert_pullable(client, repository, tag, manifest)
        if manifest is not None:
            parsed = client.request("GET", f"/v2/{repository}/manifests/{tag}").json()
            for descriptor in (parsed["config"], *parsed["layers"]):
                reachable[descriptor["digest"]] = descriptor["size"]
    # the bucket holds exactly the bytes of what is reachable: one object per blob
    listed = s3_client(replicas.s3).list_objects_v2(Bucket=replicas.bucket, MaxKeys=1000)
    sizes = sorted(entry["Size"] for entry in listed.get("Contents", []))
    assert sizes == sorted(reachable.values())

    tagged = [key for key, manifest in sorted(expected.items()) if manifest is not None]
    for repository, tag in tagged[:2]:  # skopeo pulls a sample from the other replica
        source = f"docker://{replicas.b.hostport}/{repository}:{tag}"
        manifest = expected[(repository, tag)] or b""
        raw = clients.skopeo("inspect", "--raw", "--tls-verify=false", "--creds", CREDS, source)
        assert raw.stdout.encode() == manifest
        pulled = tmp_path / f"pulled-{tag}"
        clients.skopeo(
            "copy",
            "--preserve-digests",
            "--src-tls-verify=false",
            "--src-creds",
            CREDS,
            source,
            f"oci:{pulled}:{tag}",
        )
        parsed = json.loads(manifest)
        wanted = {descriptor["digest"] for descriptor in (parsed["config"], *parsed["layers"])}
        assert wanted <= blob_digests(pulled)  # each blob there, checked against its bytes
        assert tagged_descriptor(pulled, tag).digest == digest_of(manifest)
