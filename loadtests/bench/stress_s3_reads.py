"""Large blob GETs through two gateways on Ceph RGW (SSE-KMS), every body checked (issue 16 A).

    .venv/bin/python loadtests/bench/stress_s3_reads.py [--gets 10000] [--concurrency 16]
        [--replicas 2] [--large 9,14,21,30] [--small 2,4,5,7] [--source DIR] [--json out.json]

Starts its own throwaway Ceph (tests/services/ceph.sh) and `--replicas` gateways from this
checkout (or `--source`, e.g. an export of an older commit, to compare) on one bucket and one
SQLite data dir, pushes the blobs (sizes in MiB: `--large` ones go through the driver's
take-over path, `--small` ones through aiohttp and back to the S3 connection pool), then runs
`--gets` GETs, `--concurrency` at a time, round-robin over the gateways, each body checked
for length and content (loadtests/s3_reads.py). Exit status 1 if any GET was not exact.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_s3 import MIB, Ceph, Gateway, on_ceph  # noqa: E402

from loadtests.s3_reads import blob_set, client_session, push, stress  # noqa: E402


def sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


async def run(ceph: Ceph, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    bucket = f"stress-{uuid.uuid4().hex[:12]}"
    gateways = [Gateway(ceph, bucket, 16 * MIB, tmp / "data", args.source) for _ in range(args.replicas)]
    try:
        for gateway in gateways:  # one after the other: the first makes the SQLite schema
            gateway.start()
        blobs = blob_set(args.large, args.small, args.seed)
        urls = [gateway.url for gateway in gateways]
        async with client_session() as session:
            for blob in blobs:
                await push(session, urls[0], blob)
            print(
                f"{len(blobs)} blobs pushed; {args.gets} GETs, {args.concurrency} at a time ...", flush=True
            )
            tally = await stress(session, urls, blobs, args.gets, args.concurrency, args.seed)
        cpu = sum(gateway.cpu_seconds() for gateway in gateways)
    finally:
        for gateway in gateways:
            gateway.stop()
        ceph.purge(bucket)
    print(tally.summary())
    return {
        "gets": tally.gets,
        "exact": tally.exact,
        "short": tally.short,
        "wrong": tally.wrong,
        "statuses": dict(tally.statuses),
        "errors": dict(tally.errors),
        "seconds": tally.seconds,
        "MiB_per_s": tally.bytes / MIB / tally.seconds,
        "gateway_cpu_seconds": cpu,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gets", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--large", type=sizes, default=[9, 14, 21, 30], help="MiB, taken over")
    parser.add_argument("--small", type=sizes, default=[2, 4, 5, 7], help="MiB, read through aiohttp")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--osd-store", default="memstore", choices=["memstore", "bluestore"])
    parser.add_argument("--memstore-gib", type=int, default=4)
    parser.add_argument("--source", type=Path, default=REPO_ROOT, help="run the gateways from this checkout")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (gateway logs)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    results = on_ceph(args, "stress-s3-", run)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if results["exact"] == results["gets"] else 1


if __name__ == "__main__":
    sys.exit(main())
