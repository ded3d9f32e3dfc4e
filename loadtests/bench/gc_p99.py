"""Manifest GET p99 while a garbage collection runs, against the same gateway quiet (issue 14).

    .venv/bin/python loadtests/bench/gc_p99.py [--engines sqlite,postgres] [--manifests 10000]
        [--layers 4] [--repositories 100] [--rate 200] [--quiet 20] [--mode schedule|cli]
        [--source DIR] [--json out.json]

Per engine: a fresh data dir (SQLite in it, or a fresh database on a throwaway PostgreSQL,
tests/services/postgres.py), seeded directly through the storage layer (no HTTP): the default
registry gets `--repositories` repositories holding `--manifests` image manifests in all, each
with a config and `--layers` layers of its own (10,000 x 5 = 50,000 blobs, about 100 bytes each,
written through the filesystem store's upload path, so encrypted as any push's). Every second
manifest is tagged; the others are untagged, and the registry's `deleteUntaggedManifests` is on:
a collection removes half of the manifests, links, blobs and bytes.

Then `ocigate serve` (from this checkout, or `--source`: an older export to compare) takes a
constant, open-loop load of manifest GETs by tag over every tagged manifest (`--rate` a second,
each latency measured from the time the request was due, so a stall counts for every request it
delays), and the collection runs: `--mode schedule` (default) sets the registry's
garbageCollectionSchedule to the next minute, so the gateway runs it on its own event loop, as
in production; `--mode cli` runs `ocigate gc` as another process beside it (database
contention only). Reported: p50/p99/max of the GETs due while it ran (its start and end as
it recorded them) and of those due outside it (before it, the first 5 s left out, and for
`--quiet`/2 seconds after it: on a shared machine the noise moves, so both sides of it count),
their ratio, errors, and the time of the collection with what it removed.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "loadtests"))
sys.path.insert(0, str(REPO_ROOT))

from services import _SERVE_FROM, free_port  # noqa: E402

from tests.harness.processes import http_status, stop, wait_until  # noqa: E402

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
SEED_CONCURRENCY = 16
ROWS_PER_TRANSACTION = 1000


def _digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _manifest(config: bytes, layers: list[bytes]) -> bytes:
    def descriptor(media_type: str, body: bytes) -> dict[str, Any]:
        return {"mediaType": media_type, "digest": _digest(body), "size": len(body)}

    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config),
            "layers": [descriptor(OCI_LAYER, layer) for layer in layers],
        },
        separators=(",", ":"),
    ).encode()


async def _one_chunk(body: bytes) -> AsyncIterator[bytes]:
    yield body


async def seed(env: dict[str, str], args: argparse.Namespace) -> list[str]:
    """The content, through the storage layer; the paths of the tagged manifests."""
    from ocigate.gateway.management.registry_models import RegistrySettings
    from ocigate.gateway.settings import load_settings
    from ocigate.storage.metadata import ManifestRecord
    from ocigate.storage.metadata.content.repositories import ensure_repository
    from ocigate.storage.metadata.sql import now_ms
    from ocigate.storage.registries import DEFAULT_REGISTRY, Registries

    settings = load_settings(environ=env)
    registries = await Registries.open(settings.storage)
    paths = []
    try:
        record = await registries.metadata.registries.get_registry(DEFAULT_REGISTRY)
        assert record is not None
        engine, blobs = registries.metadata.engine, registries.blobs
        per_repository = args.manifests // args.repositories
        images = []  # (repository, index, config, layers)
        for r in range(args.repositories):
            for i in range(per_repository):
                unique = f"{r}/{i}/{uuid.uuid4().hex}"
                config = json.dumps({"architecture": "amd64", "os": "linux", "seed": unique}).encode()
                layers = [f"layer {n} of {unique} ".encode() * 2 for n in range(args.layers)]
                images.append((f"bench/r{r:03d}", i, config, layers))
        bodies = [body for _, _, config, layers in images for body in (config, *layers)]

        started = time.monotonic()
        gate = asyncio.Semaphore(SEED_CONCURRENCY)
        locations: dict[str, str] = {}

        async def store(body: bytes) -> None:
            async with gate:
                upload_id = uuid.uuid4().hex
                digest = _digest(body)
                state = await blobs.start_upload(upload_id)
                state = await blobs.write_upload(upload_id, state, 0, _one_chunk(body))
                key = f"sha256/{digest[7:9]}/{digest[7:]}.{upload_id}"
                locations[digest] = await blobs.commit_upload(upload_id, state, len(body), key)

        await asyncio.gather(*(store(body) for body in bodies))
        print(f"  {len(bodies)} blobs written in {time.monotonic() - started:.0f} s", flush=True)

        started = time.monotonic()
        repository_ids: dict[str, int] = {}
        for start in range(0, len(images), ROWS_PER_TRANSACTION // (1 + args.layers)):
            batch = images[start : start + ROWS_PER_TRANSACTION // (1 + args.layers)]
            async with engine.transaction() as tx:
                for repository, _, config, layers in batch:
                    if repository not in repository_ids:
                        repository_ids[repository] = await ensure_repository(tx, record.id, repository)
                    for body in (config, *layers):
                        digest = _digest(body)
                        await tx.execute(
                            "INSERT INTO blobs (digest, size, location, created_at) VALUES (?, ?, ?, ?)",
                            digest,
                            len(body),
                            locations[digest],
                            now_ms(),
                        )
                        await tx.execute(
                            "INSERT INTO blob_links (repository_id, digest, created_at) VALUES (?, ?, ?)",
                            repository_ids[repository],
                            digest,
                            now_ms(),
                        )
        for repository, i, config, layers in images:
            manifest = _manifest(config, layers)
            tag = f"t{i}" if i % 2 == 0 else None
            await registries.metadata.content.put_manifest(
                record.id,
                repository,
                ManifestRecord(_digest(manifest), OCI_MANIFEST, manifest),
                tag,
                blobs=tuple(_digest(body) for body in (config, *layers)),
            )
            if tag is not None:
                paths.append(f"/v2/{repository}/manifests/{tag}")
        print(f"  {len(images)} manifests and their rows in {time.monotonic() - started:.0f} s", flush=True)
        properties = RegistrySettings.stored(record.properties).model_copy(
            update={"delete_untagged_manifests": True}
        )
        await registries.metadata.registries.update_registry(record.id, properties.to_json())
    finally:
        await registries.close()
    return paths


async def schedule_next_minute(env: dict[str, str]) -> None:
    """The default registry's collection at the next whole minute (UTC), today."""
    from ocigate.gateway.management.registry_models import DAYS, GarbageCollectionSchedule, RegistrySettings
    from ocigate.gateway.settings import load_settings
    from ocigate.storage.registries import DEFAULT_REGISTRY, Registries

    registries = await Registries.open(load_settings(environ=env).storage)
    try:
        record = await registries.metadata.registries.get_registry(DEFAULT_REGISTRY)
        assert record is not None
        slot = datetime.now(UTC) + timedelta(minutes=1)
        schedule = GarbageCollectionSchedule(days=[DAYS[slot.weekday()]], time=slot.strftime("%H:%M"))
        properties = RegistrySettings.stored(record.properties).model_copy(
            update={"garbage_collection_schedule": schedule}
        )
        await registries.metadata.registries.update_registry(record.id, properties.to_json())
    finally:
        await registries.close()


async def open_registries(env: dict[str, str]) -> Any:
    from ocigate.gateway.settings import load_settings
    from ocigate.storage.registries import Registries

    return await Registries.open(load_settings(environ=env).storage)


async def last_run(registries: Any) -> Any:
    from ocigate.storage.registries import DEFAULT_REGISTRY

    record = await registries.metadata.registries.get_registry(DEFAULT_REGISTRY)
    assert record is not None
    return await registries.collector().last_run(record.id)


class Load:
    """Manifest GETs at a constant rate, open loop: (due time, latency, status) of each."""

    def __init__(self, url: str, paths: list[str], rate: float) -> None:
        self.url, self.paths, self.rate = url, paths, rate
        self.samples: list[tuple[float, float, int]] = []
        self._stop = asyncio.Event()

    async def run(self) -> None:
        connector = aiohttp.TCPConnector(limit=64)
        async with aiohttp.ClientSession(connector=connector) as session:
            tasks: set[asyncio.Task[None]] = set()
            start, n = time.time(), 0
            while not self._stop.is_set():
                due = start + n / self.rate
                delay = due - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                task = asyncio.create_task(self._get(session, self.paths[n % len(self.paths)], due))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                n += 1
            await asyncio.gather(*tasks)

    async def _get(self, session: aiohttp.ClientSession, path: str, due: float) -> None:
        try:
            async with session.get(self.url + path, headers={"Accept": OCI_MANIFEST}) as response:
                await response.read()
                status = response.status
        except aiohttp.ClientError:
            status = 0
        self.samples.append((due, time.time() - due, status))

    def stop(self) -> None:
        self._stop.set()


def _ocigate(source: Path, *args: str) -> list[str]:
    """The command line of `ocigate ARGS` running the code of checkout `source`."""
    return [sys.executable, "-c", _SERVE_FROM, str(source), *args]


def _start(argv: list[str], env: dict[str, str], source: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(argv, env=env, cwd=source, stdout=out, stderr=out)


def _figures(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    if not ordered:
        return {"count": 0}
    return {
        "count": len(ordered),
        "p50_ms": 1000 * ordered[len(ordered) // 2],
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "max_ms": 1000 * ordered[-1],
    }


async def case(
    engine: str, args: argparse.Namespace, tmp: Path, postgres_url: str | None, blob_env: dict[str, str]
) -> dict[str, Any]:
    data_dir = tmp / f"{engine}-data"
    port = free_port()
    env = {
        **os.environ,
        "OCIGATE_LISTEN": f"127.0.0.1:{port}",
        "OCIGATE_DATA_DIR": str(data_dir),
        "OCIGATE_AUTH": "none",
        "OCIGATE_LIMIT_RPS": "0",
        "OCIGATE_LIMIT_CONNECTIONS": "0",
        "OCIGATE_LOG_LEVEL": "warning",
        "OCIGATE_GC_GRACE": "0",
        "OCIGATE_DRAIN_DELAY": "0",
        **blob_env,
    }
    if postgres_url is not None:
        env["OCIGATE_METADATA_URL"] = postgres_url
    print(f"{engine}: seeding {args.manifests} manifests ...", flush=True)
    paths = await seed(env, args)
    source = args.source or REPO_ROOT
    log = tmp / f"{engine}-gateway.log"
    gateway = _start(_ocigate(source, "serve"), env, source, log)
    registries = await open_registries(env)  # one pool for the polls: a loaded machine times out new ones
    load = None
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: http_status(f"{url}/healthz") == 200, 60, "ocigate", gateway, 0.1)
        load = Load(url, paths, args.rate)
        running = asyncio.create_task(load.run())
        await asyncio.sleep(args.quiet)
        if args.mode == "schedule":
            await schedule_next_minute(env)
            deadline = time.time() + 240
            # the gateway's scheduler takes it within a minute of the slot: poll for its record
            while (run := await last_run(registries)) is None and time.time() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(1)
        else:
            argv = [
                sys.executable,
                "-c",
                _SERVE_FROM,
                str(source),
                "gc",
                "--registry",
                "default",
                "--grace",
                "0",
            ]
            collected = await asyncio.create_subprocess_exec(*argv, env=env, cwd=source)
            await collected.wait()
            run = await last_run(registries)
        await asyncio.sleep(args.quiet / 2)  # quiet again: the machine's noise, before and after
        load.stop()
        await running
    finally:
        if load is not None:
            load.stop()
        await registries.close()
        stop(gateway, grace=15)
    if run is None:
        raise SystemExit(f"{engine}: no collection ran; gateway log {log}")
    begin, end = run.started_at / 1000, run.finished_at / 1000
    warm = load.samples[0][0] + min(5.0, args.quiet / 2)  # the first requests open connections
    quiet = [latency for due, latency, _ in load.samples if warm <= due < begin or due > end + 1]
    during = [latency for due, latency, _ in load.samples if begin <= due <= end]
    errors = sum(1 for _, _, status in load.samples if status != 200)
    result = {
        "engine": engine,
        "collection_seconds": end - begin,
        "removed": {"manifests": run.manifests, "links": run.links, "blobs": run.blobs, "bytes": run.bytes},
        "quiet": _figures(quiet),
        "during": _figures(during),
        "errors": errors,
    }
    if quiet and during:
        result["p99_ratio"] = result["during"]["p99_ms"] / result["quiet"]["p99_ms"]
    print(json.dumps(result), flush=True)
    return result


async def s3_delete_rate(s3_env: dict[str, str], tmp: Path, count: int, batch: int) -> dict[str, Any]:
    """Objects a second the S3 driver's `delete_many` (the collector's call) deletes, `batch`
    locations a call, on `count` small blobs written through the driver beforehand."""
    from ocigate.gateway.settings import load_settings
    from ocigate.storage.blobs import open_blob_driver

    env = {**os.environ, "OCIGATE_DATA_DIR": str(tmp / "rate-data"), **s3_env}
    env["OCIGATE_S3_BUCKET"] = f"rate-{uuid.uuid4().hex[:12]}"
    blobs = await open_blob_driver(load_settings(environ=env).storage)
    try:
        gate = asyncio.Semaphore(SEED_CONCURRENCY)

        async def put(n: int) -> str:
            async with gate:
                body, upload_id = f"object {n} {uuid.uuid4().hex}".encode(), uuid.uuid4().hex
                state = await blobs.start_upload(upload_id)
                state = await blobs.write_upload(upload_id, state, 0, _one_chunk(body))
                return await blobs.commit_upload(upload_id, state, len(body), f"x/{upload_id}")

        locations = await asyncio.gather(*(put(n) for n in range(count)))
        started = time.perf_counter()
        for start in range(0, count, batch):
            await blobs.delete_many(locations[start : start + batch])
        seconds = time.perf_counter() - started
        left = await blobs.list_blobs("", 10)
    finally:
        await blobs.close()
    result = {"objects": count, "batch": batch, "seconds": seconds, "per_second": count / seconds}
    result["left"] = len(left)
    print(f"  S3 delete_many: {count} objects, {batch} a call: {count / seconds:.0f} objects/s", flush=True)
    return result


async def main_async(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    results: dict[str, Any] = {"cases": [], "s3_deletes": []}
    server = ceph = None
    try:
        for engine in args.engines:
            url, blob_env = None, {}
            if engine == "postgres":
                if server is None:
                    from tests.services.postgres import PostgresServer

                    server = PostgresServer()
                url = server.create_database()
            if engine == "s3":  # SQLite metadata, blobs on Ceph RGW (SSE-KMS)
                if ceph is None:
                    from bench_s3 import KMS_KEY, Ceph

                    ceph = Ceph(tmp, "memstore", args.memstore_gib << 30)
                    print("starting Ceph ...", flush=True)
                    ceph.up()
                for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
                    os.environ[name] = ceph[name]  # botocore reads them here, in the seeding too
                blob_env = {
                    "AWS_ACCESS_KEY_ID": ceph["AWS_ACCESS_KEY_ID"],
                    "AWS_SECRET_ACCESS_KEY": ceph["AWS_SECRET_ACCESS_KEY"],
                    "AWS_DEFAULT_REGION": ceph["AWS_DEFAULT_REGION"],
                    "OCIGATE_BLOB_STORE": "s3",
                    "OCIGATE_S3_ENDPOINT_URL": ceph["S3_ENDPOINT_URL"],
                    "OCIGATE_S3_BUCKET": f"gc-{uuid.uuid4().hex[:12]}",
                    "OCIGATE_S3_ADDRESSING_STYLE": "path",
                    "OCIGATE_S3_SSE": "aws:kms",
                    "OCIGATE_S3_SSE_KMS_KEY_ID": KMS_KEY,
                }
                for batch in args.delete_batches:
                    rate = await s3_delete_rate(blob_env, tmp, args.delete_objects, batch)
                    results["s3_deletes"].append(rate)
            results["cases"].append(await case(engine, args, tmp, url, blob_env))
    finally:
        if server is not None:
            server.stop()
        if ceph is not None:
            ceph.down()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--engines",
        type=lambda s: s.split(","),
        default=["sqlite", "postgres"],
        help="sqlite, postgres, s3 (SQLite and blobs on a throwaway Ceph RGW)",
    )
    parser.add_argument("--delete-objects", type=int, default=5000, help="objects of the S3 delete rate")
    parser.add_argument(
        "--delete-batches", type=lambda s: [int(x) for x in s.split(",")], default=[200, 1000]
    )
    parser.add_argument("--memstore-gib", type=int, default=4)
    parser.add_argument("--manifests", type=int, default=10_000)
    parser.add_argument("--layers", type=int, default=4, help="layers per manifest (plus its config)")
    parser.add_argument("--repositories", type=int, default=100)
    parser.add_argument("--rate", type=float, default=200, help="manifest GETs a second")
    parser.add_argument("--quiet", type=float, default=20, help="seconds of load before the collection")
    parser.add_argument("--mode", choices=["schedule", "cli"], default="schedule")
    parser.add_argument("--source", type=Path, help="run the gateway from this checkout")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gc-p99-") as tmp:
        results = asyncio.run(main_async(args, Path(tmp)))
    for rate in results["s3_deletes"]:
        print(f"S3 DeleteObjects via delete_many, {rate['batch']} a call: {rate['per_second']:.0f} objects/s")
    for result in results["cases"]:
        quiet, during = result["quiet"], result["during"]
        print(
            f"{result['engine']:>8}: collection {result['collection_seconds']:.1f} s "
            f"({result['removed']}); GET p99 quiet {quiet.get('p99_ms', 0):.1f} ms, "
            f"during {during.get('p99_ms', 0):.1f} ms (x{result.get('p99_ratio', 0):.2f}); "
            f"p50 {quiet.get('p50_ms', 0):.1f} / {during.get('p50_ms', 0):.1f} ms; errors {result['errors']}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
