"""The gateway on Ceph RGW (SSE-KMS) against direct aiobotocore on the same Ceph, in one run.

    .venv/bin/python loadtests/bench/bench_s3.py [--blob-mib 64] [--blobs 8] [--streams 1,4]
        [--repeat 3] [--rss-pushes 32] [--rss-mb 200] [--part-mib 16,8] [--source DIR]
        [--json out.json]

Starts its own throwaway Ceph (tests/services/ceph.sh: mon + OSD + radosgw on free loopback
ports, memstore by default) and `ocigate serve` processes (blobs in S3 with SSE-KMS key
testkey-1, metadata in SQLite, auth and limits off: the data path is measured), run from this
checkout or from `--source` (to measure a patch).

(a) Throughput, with the first part size. `--blobs` blobs of `--blob-mib` MiB, `--streams` at
    a time, each pass timed as total bytes / wall time: gateway push monolithic (POST ?digest=
    with the body), gateway push chunked (POST, PATCHes of `--patch-mib` with Content-Range, PUT
    ?digest=), gateway pull (GET, streamed by the gateway), pull through a second gateway on the
    same data dir and bucket with OCIGATE_S3_REDIRECT=true (a 307 to a presigned URL where that
    is implemented; the report says whether any 307 came); and directly with aiobotocore:
    PutObject and GetObject (streamed) of the same sizes, with the same SSE-KMS. Passes alternate
    gateway-first and direct-first; medians of `--repeat`, and the median of the per-pass
    pull/GET ratios (robust to a machine whose load drifts). Gateway CPU seconds per GB moved
    tell where a shared machine's CPU goes. What a push pass wrote is deleted behind the
    gateway's back afterwards (memstore keeps it in RAM) and never read again.
(b) Memory. `--rss-pushes` concurrent pushes of `--rss-mb` MB each, as chunked PATCHes of
    `--rss-patch-mib` streamed from generators (the client holds no blob), on a fresh gateway
    per part size; peak RSS is the kernel's VmHWM of the gateway process (its VmRSS is also
    sampled every 50 ms), against the issue's bound pushes x part size + 150 MB.

The ratio targets (issue 3): pull >= 80% of direct GET; peak RSS under the bound.
Bodies are a random 8 MiB block repeated, ending in bytes unique to each blob (no dedup).
MB = 10^6 bytes, MiB = 2^20.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "loadtests"))

from services import free_port, serve_argv  # noqa: E402

from tests.harness.ceph import CephCluster  # noqa: E402
from tests.harness.processes import ServiceError, http_status, stop, wait_until  # noqa: E402

MIB = 1 << 20
MB = 1_000_000
BLOCK = os.urandom(8 * MIB)
SUFFIX = 16  # the bytes that make each blob unique
REPO = "bench/s3"
KMS_KEY = "testkey-1"
SSE = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": KMS_KEY}
READ = MIB


# --- services ------------------------------------------------------------------------------


class Ceph(CephCluster):
    """The throwaway Ceph of a benchmark: its exports by name, and buckets dropped at once."""

    def __init__(self, workdir: Path, osd_store: str, memstore_bytes: int) -> None:
        super().__init__(workdir / "ceph", OSD_STORE=osd_store, MEMSTORE_BYTES=str(memstore_bytes))

    def __getitem__(self, name: str) -> str:
        return self.exported[name]

    def purge(self, bucket: str) -> None:
        """Drop a bucket and its objects at once (memstore holds them in RAM)."""
        self.admin("bucket", "rm", f"--bucket={bucket}", "--purge-objects", "--bypass-gc")


@dataclass
class Gateway:
    ceph: Ceph
    bucket: str
    part_size: int
    data_dir: Path
    source: Path = REPO_ROOT  # the checkout the gateway runs from
    redirect: bool = False  # OCIGATE_S3_REDIRECT: blob GETs answered with a presigned URL
    env: dict[str, str] = field(default_factory=dict)  # more settings, or overrides
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Gateway:
        self.port = free_port()
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": self.ceph["AWS_ACCESS_KEY_ID"],
            "AWS_SECRET_ACCESS_KEY": self.ceph["AWS_SECRET_ACCESS_KEY"],
            "AWS_DEFAULT_REGION": self.ceph["AWS_DEFAULT_REGION"],
            "OCIGATE_LISTEN": f"127.0.0.1:{self.port}",
            "OCIGATE_DATA_DIR": str(self.data_dir),
            "OCIGATE_AUTH": "none",
            "OCIGATE_LIMIT_RPS": "0",
            "OCIGATE_LIMIT_CONNECTIONS": "0",
            "OCIGATE_LOG_LEVEL": "warning",
            "OCIGATE_BLOB_STORE": "s3",
            "OCIGATE_S3_ENDPOINT_URL": self.ceph["S3_ENDPOINT_URL"],
            "OCIGATE_S3_BUCKET": self.bucket,
            "OCIGATE_S3_ADDRESSING_STYLE": "path",
            "OCIGATE_S3_SSE": "aws:kms",
            "OCIGATE_S3_SSE_KMS_KEY_ID": KMS_KEY,
            "OCIGATE_S3_PART_SIZE": str(self.part_size),
            "OCIGATE_S3_REDIRECT": str(self.redirect).lower(),
            **self.env,
        }
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.data_dir.parent / f"{self.data_dir.name}-{self.port}.log"
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                serve_argv(self.source), env=env, cwd=self.source, stdout=out, stderr=out
            )

        try:
            wait_until(lambda: http_status(f"{self.url}/v2/") == 200, 60, "ocigate", self.process, 0.1)
        except ServiceError as exc:
            raise SystemExit(f"{exc}; log in {log}") from None
        return self

    def status(self, field: str) -> int:
        """A /proc/PID/status memory field (VmRSS, VmHWM), in bytes."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise KeyError(field)

    def cpu_seconds(self) -> float:
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        stop(self.process, grace=15)


# --- blobs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Blob:
    """`size` bytes: BLOCK repeated, then a unique suffix. Streams without being held."""

    size: int
    suffix: bytes

    def chunks(self, start: int = 0, end: int | None = None, piece: int = MIB) -> AsyncIterator[bytes]:
        end = self.size if end is None else end

        async def gen() -> AsyncIterator[bytes]:
            at = start
            while at < end:
                stop = min(end, at + piece)
                yield self.slice(at, stop)
                at = stop

        return gen()

    def slice(self, start: int, end: int) -> bytes:
        body, out = self.size - SUFFIX, bytearray()
        at = start
        while at < min(end, body):
            offset = at % len(BLOCK)
            take = min(end, body, at - offset + len(BLOCK)) - at
            out += BLOCK[offset : offset + take]
            at += take
        if end > body:
            out += self.suffix[max(start, body) - body : end - body]
        return bytes(out)

    def bytes(self) -> bytes:
        return self.slice(0, self.size)


_PREFIX_HASHES: dict[int, Any] = {}


def make_blob(size: int) -> tuple[Blob, str]:
    """A unique blob and its digest (the hash of the shared prefix is computed once per size)."""
    blob = Blob(size, uuid.uuid4().bytes[:SUFFIX])
    if size not in _PREFIX_HASHES:
        hasher = hashlib.sha256()
        for at in range(0, size - SUFFIX, len(BLOCK)):
            hasher.update(blob.slice(at, min(at + len(BLOCK), size - SUFFIX)))
        _PREFIX_HASHES[size] = hasher
    hasher = _PREFIX_HASHES[size].copy()
    hasher.update(blob.suffix)
    return blob, f"sha256:{hasher.hexdigest()}"


# --- clients -------------------------------------------------------------------------------


class GatewayClient:
    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session, self.url = session, url

    async def _expect(self, response: aiohttp.ClientResponse, status: int) -> None:
        if response.status != status:
            raise RuntimeError(f"{response.method} {response.url}: {response.status} {await response.text()}")

    async def push_monolithic(self, body: bytes | Blob, digest: str) -> None:
        data = body.chunks() if isinstance(body, Blob) else body
        size = body.size if isinstance(body, Blob) else len(body)
        async with self.session.post(
            f"{self.url}/v2/{REPO}/blobs/uploads/",
            params={"digest": digest},
            data=data,
            headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"},
        ) as response:
            await self._expect(response, 201)

    async def push_chunked(self, body: bytes | Blob, digest: str, patch: int) -> None:
        size = body.size if isinstance(body, Blob) else len(body)
        async with self.session.post(f"{self.url}/v2/{REPO}/blobs/uploads/") as response:
            await self._expect(response, 202)
            location = response.headers["Location"]
        for start in range(0, size, patch):
            end = min(size, start + patch)
            data = body.chunks(start, end) if isinstance(body, Blob) else memoryview(body)[start:end]
            headers = {"Content-Range": f"{start}-{end - 1}", "Content-Type": "application/octet-stream"}
            if not isinstance(body, Blob):
                headers["Content-Length"] = str(end - start)
            async with self.session.patch(self.url + location, data=data, headers=headers) as response:
                await self._expect(response, 202)
                location = response.headers["Location"]
        async with self.session.put(self.url + location, params={"digest": digest}) as response:
            await self._expect(response, 201)

    async def pull(self, digest: str, size: int, redirected: list[bool] | None = None) -> None:
        async with self.session.get(f"{self.url}/v2/{REPO}/blobs/{digest}") as response:
            await self._expect(response, 200)
            if redirected is not None:
                redirected.append(bool(response.history))
            got = 0
            async for chunk in response.content.iter_chunked(READ):
                got += len(chunk)
        if got != size:
            raise RuntimeError(f"pulled {got} bytes of {digest}, expected {size}")


async def direct_get(s3: Any, bucket: str, key: str, size: int) -> None:
    response = await s3.get_object(Bucket=bucket, Key=key)
    got = 0
    async with response["Body"] as stream:
        async for chunk in stream.iter_chunks(READ):
            got += len(chunk)
    if got != size:
        raise RuntimeError(f"GET {key}: {got} bytes, expected {size}")


async def run_all(jobs: list[Callable[[], Awaitable[None]]], streams: int) -> float:
    """Run the jobs, `streams` at a time; the wall time."""
    semaphore = asyncio.Semaphore(streams)

    async def one(job: Callable[[], Awaitable[None]]) -> None:
        async with semaphore:
            await job()

    started = time.perf_counter()
    await asyncio.gather(*(one(job) for job in jobs))
    return time.perf_counter() - started


# --- (a) throughput ------------------------------------------------------------------------


async def list_keys(s3: Any, bucket: str) -> set[str]:
    keys: set[str] = set()
    async for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys |= {item["Key"] for item in page.get("Contents", ())}
    return keys


async def drop_keys(s3: Any, ceph: Ceph, bucket: str, keep: set[str]) -> None:
    """Delete what a push pass wrote (memstore keeps it in RAM), and run RGW's garbage collector
    now rather than hours later. Behind the gateway's back: those blobs are never read again."""
    keys = sorted(await list_keys(s3, bucket) - keep)
    for start in range(0, len(keys), 1000):
        batch = [{"Key": key} for key in keys[start : start + 1000]]
        await s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
    await asyncio.to_thread(ceph.admin, "gc", "process", "--include-all")


async def throughput(
    gateways: tuple[Gateway, Gateway],
    ceph: Ceph,
    args: argparse.Namespace,
    s3: Any,
    session: aiohttp.ClientSession,
) -> dict[str, Any]:
    """`gateways`: one streaming blob GETs, one in redirect mode (same data dir and bucket)."""
    gateway, redirecting = gateways
    size = args.blob_mib * MIB
    total_mb = args.blobs * size / MB
    client = GatewayClient(session, gateway.url)
    redirected: list[bool] = []
    bucket = f"direct-{uuid.uuid4().hex[:12]}"
    await s3.create_bucket(Bucket=bucket)
    # untimed: the blobs the GETs read, on both sides, and one checked byte for byte
    stored = [(blob.bytes(), digest) for blob, digest in (make_blob(size) for _ in range(args.blobs))]
    keys = [f"stored/{digest}" for _, digest in stored]
    await run_all([partial(client.push_monolithic, body, digest) for body, digest in stored], 4)
    await run_all(
        [
            partial(s3.put_object, Bucket=bucket, Key=k, Body=b, **SSE)
            for (b, _), k in zip(stored, keys, strict=True)
        ],
        4,
    )
    async with session.get(f"{gateway.url}/v2/{REPO}/blobs/{stored[0][1]}") as response:
        if f"sha256:{hashlib.sha256(await response.read()).hexdigest()}" != stored[0][1]:
            raise SystemExit("the gateway served other bytes than were pushed")
    keep = {bucket: set(keys), gateway.bucket: await list_keys(s3, gateway.bucket)}
    patch = args.patch_mib * MIB

    def fresh() -> list[tuple[bytes, str]]:
        return [(blob.bytes(), digest) for blob, digest in (make_blob(size) for _ in range(args.blobs))]

    cases: dict[str, tuple[str | None, Callable[[], list[Callable[[], Awaitable[Any]]]]]] = {
        # name: (bucket the case writes to, jobs)
        "push monolithic": (
            gateway.bucket,
            lambda: [partial(client.push_monolithic, b, d) for b, d in fresh()],
        ),
        "push chunked": (
            gateway.bucket,
            lambda: [partial(client.push_chunked, b, d, patch) for b, d in fresh()],
        ),
        "pull": (None, lambda: [partial(client.pull, d, size) for _, d in stored]),
        "pull, redirect mode": (
            None,
            lambda: [
                partial(GatewayClient(session, redirecting.url).pull, d, size, redirected) for _, d in stored
            ],
        ),
        "direct PUT": (
            bucket,
            lambda: [
                partial(s3.put_object, Bucket=bucket, Key=f"put/{d}", Body=b, **SSE) for b, d in fresh()
            ],
        ),
        "direct GET": (None, lambda: [partial(direct_get, s3, bucket, k, size) for k in keys]),
    }
    results: dict[str, Any] = {}
    for streams in args.streams:
        samples: dict[str, list[float]] = {name: [] for name in cases}
        cpu: dict[str, list[float]] = {name: [] for name in cases if not name.startswith("direct")}
        cpu_of = {name: redirecting if "redirect" in name else gateway for name in cases}
        for n in range(args.repeat):
            order = list(cases) if n % 2 == 0 else [*list(cases)[4:], *list(cases)[:4]]
            for name in order:
                written, make_jobs = cases[name]
                jobs = make_jobs()  # bodies built before the clock starts
                before = cpu_of[name].cpu_seconds()
                seconds = await run_all(jobs, streams)
                samples[name].append(total_mb / seconds)
                if name in cpu:  # gateway CPU seconds per GB moved
                    cpu[name].append((cpu_of[name].cpu_seconds() - before) / (total_mb / 1000))
                del jobs
                if written is not None:
                    await drop_keys(s3, ceph, written, keep[written])
            print(
                f"  {streams} stream(s), pass {n + 1}: "
                + ", ".join(f"{k} {v[-1]:.0f}" for k, v in samples.items())
            )
        medians = {name: statistics.median(values) for name, values in samples.items()}
        results[str(streams)] = {
            "MB_per_s": medians,
            "gateway_cpu_s_per_GB": {name: statistics.median(values) for name, values in cpu.items()},
            "ratio": {
                "pull / direct GET": medians["pull"] / medians["direct GET"],
                "pull, redirect mode / direct GET": medians["pull, redirect mode"] / medians["direct GET"],
                "push monolithic / direct PUT": medians["push monolithic"] / medians["direct PUT"],
                "push chunked / direct PUT": medians["push chunked"] / medians["direct PUT"],
            },
            "samples": samples,
            "paired pull / direct GET": statistics.median(
                p / g for p, g in zip(samples["pull"], samples["direct GET"], strict=True)
            ),
        }
    ceph.purge(bucket)
    # the redirect gateway answers 307 only where redirect mode is implemented
    return {"streams": results, "redirect_mode_redirected": any(redirected)}


# --- (b) peak RSS --------------------------------------------------------------------------


async def peak_rss(
    gateway: Gateway, args: argparse.Namespace, session: aiohttp.ClientSession
) -> dict[str, Any]:
    client = GatewayClient(session, gateway.url)
    size = args.rss_mb * MB
    blobs = [make_blob(size) for _ in range(args.rss_pushes)]
    baseline = gateway.status("VmRSS")
    sampled = baseline
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal sampled
        while not done.is_set():
            sampled = max(sampled, gateway.status("VmRSS"))
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample())
    cpu = gateway.cpu_seconds()
    try:
        seconds = await run_all(
            [lambda b=b, d=d: client.push_chunked(b, d, args.rss_patch_mib * MIB) for b, d in blobs],
            args.rss_pushes,
        )
    finally:
        done.set()
        await sampler
    hwm = gateway.status("VmHWM")
    bound = args.rss_pushes * gateway.part_size + 150 * MB
    return {
        "part_size_MiB": gateway.part_size / MIB,
        "pushes": args.rss_pushes,
        "push_MB": args.rss_mb,
        "seconds": seconds,
        "MB_per_s": args.rss_pushes * size / MB / seconds,
        "gateway_cpu_s_per_GB": (gateway.cpu_seconds() - cpu) / (args.rss_pushes * size / 1e9),
        "baseline_rss_MiB": baseline / MIB,
        "peak_sampled_rss_MiB": sampled / MIB,
        "peak_VmHWM_MiB": hwm / MIB,
        "bound_MiB": bound / MIB,
        "within_bound": hwm < bound,
    }


# --- main ----------------------------------------------------------------------------------


def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(
            cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    )


def report(results: dict[str, Any]) -> str:
    lines = []
    for part, per_part in results["throughput"].items():
        if not per_part["redirect_mode_redirected"]:
            lines.append("\n(redirect mode: the gateway streamed, it answered no 307)")
        for streams, numbers in per_part["streams"].items():
            rows = [["", "MB/s (median)", "gateway CPU s/GB"]]
            for name, value in numbers["MB_per_s"].items():
                rows.append(
                    [
                        name,
                        f"{value:.0f}",
                        f"{numbers['gateway_cpu_s_per_GB'].get(name, 0):.2f}"
                        if name in numbers["gateway_cpu_s_per_GB"]
                        else "-",
                    ]
                )
            for name, value in numbers["ratio"].items():
                rows.append([name, f"{value:.0%}", ""])
            rows.append(
                ["pull / direct GET, paired by pass", f"{numbers['paired pull / direct GET']:.0%}", ""]
            )
            lines += [f"\nthroughput, part {part} MiB, {streams} stream(s):", table(rows)]
    rows = [["part MiB", "pushes x MB", "MB/s", "baseline MiB", "peak VmHWM MiB", "bound MiB", "ok"]]
    for r in results["rss"]:
        rows.append(
            [
                f"{r['part_size_MiB']:.0f}",
                f"{r['pushes']} x {r['push_MB']}",
                f"{r['MB_per_s']:.0f}",
                f"{r['baseline_rss_MiB']:.0f}",
                f"{r['peak_VmHWM_MiB']:.0f}",
                f"{r['bound_MiB']:.0f}",
                "yes" if r["within_bound"] else "NO",
            ]
        )
    lines += ["\npeak gateway RSS:", table(rows)]
    return "\n".join(lines)


async def bench(ceph: Ceph, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    results: dict[str, Any] = {"throughput": {}, "rss": []}
    config = AioConfig(
        signature_version="s3v4",
        s3={"addressing_style": "path", "payload_signing_enabled": False},
        max_pool_connections=64,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        read_timeout=300,
    )
    async with (
        get_session().create_client(
            "s3",
            endpoint_url=ceph["S3_ENDPOINT_URL"],
            aws_access_key_id=ceph["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=ceph["AWS_SECRET_ACCESS_KEY"],
            region_name=ceph["AWS_DEFAULT_REGION"],
            config=config,
        ) as s3,
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=None, sock_read=300)
        ) as session,
    ):
        for n, part in enumerate(args.part_mib):
            if not args.skip_throughput and (n == 0 or args.throughput_every_part):
                bucket = f"gw-{uuid.uuid4().hex[:12]}"
                pair = (
                    Gateway(ceph, bucket, part * MIB, tmp / f"tp-{part}", args.source).start(),
                    Gateway(ceph, bucket, part * MIB, tmp / f"tp-{part}", args.source, redirect=True),
                )
                print(f"throughput (part {part} MiB) ...", flush=True)
                try:
                    pair[1].start()  # after the first: it made the SQLite schema
                    results["throughput"][str(part)] = await throughput(pair, ceph, args, s3, session)
                finally:
                    for gateway in pair:
                        gateway.stop()
                    ceph.purge(bucket)
            if args.rss_pushes:
                gateway = Gateway(
                    ceph, f"gw-{uuid.uuid4().hex[:12]}", part * MIB, tmp / f"rss-{part}", args.source
                )
                gateway.start()
                print(f"peak RSS (part {part} MiB, {args.rss_pushes} x {args.rss_mb} MB) ...", flush=True)
                try:
                    results["rss"].append(await peak_rss(gateway, args, session))
                finally:
                    gateway.stop()
                    ceph.purge(gateway.bucket)
    return results


def on_ceph(
    args: argparse.Namespace,
    prefix: str,
    work: Callable[[Ceph, argparse.Namespace, Path], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    """`work` on a throwaway Ceph (`args.osd_store`, `args.memstore_gib`) in a temp dir, kept
    (gateway logs) with `args.keep` or when it failed; its results with the settings."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        ceph = Ceph(tmp, args.osd_store, args.memstore_gib << 30)
    except ServiceError as exc:
        raise SystemExit(str(exc)) from None
    started = time.monotonic()
    print(f"starting Ceph ({args.osd_store}) in {tmp} ...", flush=True)
    try:
        ceph.up()
        print(f"Ceph up in {time.monotonic() - started:.0f} s", flush=True)
        results = asyncio.run(work(ceph, args, tmp))
    except BaseException:
        args.keep = True
        raise
    finally:
        ceph.down()
        if args.keep:
            print(f"gateway logs kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    results["settings"] = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blob-mib", type=int, default=64)
    parser.add_argument("--blobs", type=int, default=8)
    parser.add_argument("--streams", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4])
    parser.add_argument("--patch-mib", type=int, default=8, help="PATCH size of chunked pushes (a)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rss-pushes", type=int, default=32, help="0: skip (b)")
    parser.add_argument("--rss-mb", type=int, default=200)
    parser.add_argument("--rss-patch-mib", type=int, default=64, help="PATCH size of the pushes of (b)")
    parser.add_argument("--part-mib", type=lambda s: [int(x) for x in s.split(",")], default=[16, 8])
    parser.add_argument("--throughput-every-part", action="store_true", help="(a) for each part size")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--osd-store", default="memstore", choices=["memstore", "bluestore"])
    parser.add_argument("--memstore-gib", type=int, default=10, help="memstore cap (RAM used as written)")
    parser.add_argument("--source", type=Path, default=REPO_ROOT, help="run the gateways from this checkout")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (gateway logs)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    results = on_ceph(args, "bench-s3-", bench)
    results["machine"] = {"cpus": os.cpu_count(), "load_average": os.getloadavg()}
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
