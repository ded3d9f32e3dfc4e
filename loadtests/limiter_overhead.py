"""What the limiter costs: manifest GET throughput with the limiter off and with limits set high.

    .venv/bin/python loadtests/limiter_overhead.py [--duration 5] [--repeat 3] [--connections 32]

Starts one gateway per variant: limiter off; in-memory limiter; off with OCIGATE_REDIS_URL set
(which also moves the manifest cache to Redis); Redis limiter. The limiters get limits far above
the load, so every request is counted and none refused. Seeds one image, then runs `wrk` on
`GET /v2/<repo>/manifests/<digest>` against each variant in turn, alternating the order in every
repetition, and prints the median of the paired ratios against the baseline ("off" for the
in-memory limiter, "off+redis" for the Redis one): req/s and the gateway's CPU time per request.
The issue's bar: within 5%. On a busy shared machine prefer limiter_cost.py (instruction counts).
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from seed import REPOSITORY, seed_image  # noqa: E402
from services import HIGH, OFF, running  # noqa: E402
from wrk import cpu_seconds, wrk  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    with running("ocigate-overhead-") as services:
        redis_url = services.redis()
        shared = {"OCIGATE_REDIS_URL": redis_url}  # the manifest cache moves to Redis too
        variants = {
            "off": services.gateway("off", OFF),
            "memory": services.gateway("memory", HIGH),
            "off+redis": services.gateway("offredis", {**OFF, **shared}),
            "redis": services.gateway("redis", {**HIGH, **shared}),
        }
        urls = {}
        for name, gateway in variants.items():
            seed_image(gateway.url)
            head = subprocess.run(
                ["curl", "-sI", "-H", "Accept: */*", f"{gateway.url}/v2/{REPOSITORY}/manifests/v1"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            digest = re.search(r"(?i)docker-content-digest:\s*(\S+)", head)
            assert digest, head
            urls[name] = f"{gateway.url}/v2/{REPOSITORY}/manifests/{digest.group(1)}"
        samples: dict[str, list[float]] = {name: [] for name in variants}
        costs: dict[str, list[float]] = {name: [] for name in variants}
        order = list(variants)
        for repetition in range(args.repeat):
            for name in order if repetition % 2 == 0 else reversed(order):
                pid = variants[name].popen.pid  # type: ignore[union-attr]
                before = cpu_seconds(pid)
                rate, count = wrk(urls[name], args.duration, args.connections, None)
                samples[name].append(rate)
                costs[name].append((cpu_seconds(pid) - before) / count * 1e6)
    print(f"manifest GET by digest, wrk -t1 -c{args.connections}, {args.repeat} x {args.duration:g} s each")
    print("  variant     median req/s   paired ratios vs baseline (off; off+redis): req/s   CPU/request")
    for name, values in samples.items():
        baseline = "off+redis" if name.endswith("redis") else "off"
        rates = [value / off for value, off in zip(values, samples[baseline], strict=True)]
        cpus = [cpu / off for cpu, off in zip(costs[name], costs[baseline], strict=True)]
        print(
            f"  {name:9} {statistics.median(values):12.0f}   {100 * (statistics.median(rates) - 1):+42.1f}%"
            f"   {100 * (statistics.median(cpus) - 1):+18.1f}%  ({statistics.median(costs[name]):.1f} us)"
        )
    print("  each repetition runs the variants back to back (order alternating); ratios pair neighbours,")
    print("  which cancels most of the drift of a shared machine. Redis's own CPU is not counted.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
