"""A pull storm on one gateway on Ceph RGW (SSE-KMS): bytes the store sends per storm (issue 17).

    .venv/bin/python loadtests/bench/storm_s3.py [--clients 32] [--blob-mib 64] [--workers 1]
        [--baseline DIR] [--json out.json]

Starts its own throwaway Ceph (tests/services/ceph.sh) and, for each case, a fresh bucket and a
fresh `ocigate serve` whose S3 connections go through a byte-counting proxy (tests/
stalling_proxy.py). One blob of `--blob-mib` MiB (and a few odd bytes) is pushed, then
`--clients` GETs of it start at once (the cold storm), every body checked; then the same again
(the warm storm). Reported per storm: bytes the store sent through the proxy (body and headers)
as a multiple of the blob, the gateway process's CPU seconds (user + system; its own, not its
workers': meaningful with --workers 1), wall time, bodies exact, and the gateway's peak RSS
(VmHWM).

Cases, side by side in one run: this checkout with the edge cache (OCIGATE_CACHE_DIR), this
checkout without it (shared reads only), and with `--baseline DIR` (an export of an older commit,
e.g. `git archive eccb6af | tar -x -C /tmp/old`) that code with the cache and without it.
Targets (issue 17): cold <= 1.1x the blob, warm <= 0.05x.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_s3 import MIB, Ceph, Gateway, on_ceph  # noqa: E402

from loadtests.s3_reads import Blob, Tally, client_session, get_checked, push  # noqa: E402
from tests.stalling_proxy import StallingProxy  # noqa: E402


async def storm(url: str, blob: Blob, clients: int) -> Tally:
    """`clients` GETs of `blob` started at once, each on a connection of its own."""
    tally = Tally(gets=clients)
    async with client_session() as session:
        started = time.perf_counter()
        await asyncio.gather(*(get_checked(session, url, blob, tally) for _ in range(clients)))
        tally.seconds = time.perf_counter() - started
    return tally


async def case(
    ceph: Ceph, args: argparse.Namespace, tmp: Path, name: str, source: Path, cache: bool, blob: Blob
) -> dict[str, Any]:
    endpoint = ceph["S3_ENDPOINT_URL"]
    host, _, port = endpoint.removeprefix("http://").rpartition(":")
    proxy = await StallingProxy(host, int(port)).start()
    bucket = f"storm-{uuid.uuid4().hex[:12]}"
    env = {"OCIGATE_S3_ENDPOINT_URL": proxy.url, "OCIGATE_WORKERS": str(args.workers)}
    if cache:
        env["OCIGATE_CACHE_DIR"] = str(tmp / f"{name}-cache")
    gateway = Gateway(ceph, bucket, 16 * MIB, tmp / f"{name}-data", source, env=env)
    try:
        await asyncio.to_thread(gateway.start)
        async with client_session() as session:
            await push(session, gateway.url, blob)
        storms: dict[str, Any] = {}
        for which in ("cold", "warm"):
            await asyncio.sleep(1)  # a fill finishing after the last body is not the next storm's
            before, cpu = proxy.received, gateway.cpu_seconds()
            tally = await storm(gateway.url, blob, args.clients)
            sent, cpu = proxy.received - before, gateway.cpu_seconds() - cpu
            storms[which] = {
                "store_bytes": sent,
                "x_blob": sent / blob.size,
                "gateway_cpu_s": cpu,
                "seconds": tally.seconds,
                "exact": tally.exact,
                "summary": tally.summary(),
            }
            print(
                f"{name:>22} {which}: the store sent {sent / blob.size:.3f}x the blob; "
                f"gateway CPU {cpu:.2f} s; {tally.summary()}"
            )
        storms["peak_rss_mb"] = gateway.status("VmHWM") / 1e6
        return storms
    finally:
        gateway.stop()
        await proxy.close()
        ceph.purge(bucket)


async def run(ceph: Ceph, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    blob = Blob.make(args.blob_mib * MIB + 4321, random.Random(args.seed))
    cases = [("ocigate+edge-cache", REPO_ROOT, True), ("ocigate (no cache)", REPO_ROOT, False)]
    if args.baseline is not None:
        cases += [("baseline+edge-cache", args.baseline, True), ("baseline (no cache)", args.baseline, False)]
    results: dict[str, Any] = {"blob_bytes": blob.size, "clients": args.clients}
    for name, source, cache in cases:
        results[name] = await case(ceph, args, tmp, name.split()[0], source, cache, blob)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--blob-mib", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--baseline", type=Path, help="also run the gateway from this checkout")
    parser.add_argument("--osd-store", default="memstore", choices=["memstore", "bluestore"])
    parser.add_argument("--memstore-gib", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the work dir (gateway logs)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    results = on_ceph(args, "storm-s3-", run)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    exact = all(
        results[name][which]["exact"] == args.clients
        for name in results
        if isinstance(results[name], dict) and "cold" in results[name]
        for which in ("cold", "warm")
    )
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
