"""What the limiter costs, counted in CPU instructions: steady where req/s on a shared machine is not.

    .venv/bin/python loadtests/limiter_cost.py [--requests 2000]      (needs valgrind)

Runs one gateway per variant under callgrind with instrumentation off, seeds an image, warms up,
then switches instrumentation on for exactly N sequential `GET /v2/<repo>/manifests/<digest>` on
one keep-alive connection and prints user-space instructions per request: limiter off, in-memory,
and the same two with OCIGATE_REDIS_URL set (limits far above the load, so every request is
counted and none refused). OCIGATE_REDIS_URL also moves the manifest cache to Redis, so the Redis
limiter is compared with "off+redis", not with "off". Kernel time
(syscalls) is not counted, so the share it gives is an upper bound of the throughput cost.

Redis: requests far from their limit pass on credit and are charged to Redis in a batch every
50 ms (limiter/redis_backend.py). Under callgrind a request takes ~100x longer, so the batch
period is stretched to cover the same number of requests as at full speed (--requests-per-batch).
"""

from __future__ import annotations

import argparse
import glob
import http.client
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from seed import REPOSITORY, seed_image  # noqa: E402
from services import HIGH, OFF, REPO_ROOT, Services, free_port, running  # noqa: E402

from tests.harness.processes import http_status, stop, wait_until  # noqa: E402

# variant → (limits, whether OCIGATE_REDIS_URL is set, the baseline it is compared with). With
# Redis set the manifest cache lives there too, so the Redis limiter's baseline is "off+redis".
VARIANTS = {
    "off": (OFF, False, "off"),
    "memory": (HIGH, False, "off"),
    "off+redis": (OFF, True, "off+redis"),
    "redis": (HIGH, True, "off+redis"),
}
# the gateway, with the Redis charge period set from the command line (see the docstring)
_LAUNCH = (
    "import sys, ocigate.limiter.redis_backend as r; r._CHARGE_DELAY = float(sys.argv[1]); "
    "from ocigate.gateway.cli import main; sys.exit(main(['serve']))"
)


def measure(variant: str, services: Services, redis_url: str, count: int, per_batch: int) -> float:
    port = free_port()
    env = {
        **os.environ,
        "OCIGATE_LISTEN": f"127.0.0.1:{port}",
        "OCIGATE_DATA_DIR": str(services.workdir / f"{variant}-data"),
        "OCIGATE_LOG_LEVEL": "warning",
        "OCIGATE_AUTH": "none",
        **VARIANTS[variant][0],
    }
    if VARIANTS[variant][1]:
        env["OCIGATE_REDIS_URL"] = redis_url
        # the lease refresh runs every lease/3 s of wall time: stretched like the charge period
        env["OCIGATE_LIMIT_LEASE_SECONDS"] = "3000"
    out = services.workdir / f"{variant}.callgrind"
    connection, path, delay = _connect(port), "", 0.05
    process = None
    try:
        # first a run to time one request under callgrind, then the measured run
        for phase in ("time", "measure"):
            command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
            command += [sys.executable, "-c", _LAUNCH, str(delay)]
            process = subprocess.Popen(
                command, env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            base = f"http://127.0.0.1:{port}"
            _wait(base, process)
            seed_image(base)
            connection = _connect(port)
            path = _manifest_path(connection)
            _get(connection, path, 200)  # warm
            if phase == "time":  # how long one request takes with instrumentation on
                subprocess.run(
                    ["callgrind_control", "-i", "on", str(process.pid)], capture_output=True, check=True
                )
                started = time.monotonic()
                _get(connection, path, 100)
                per_request = (time.monotonic() - started) / 100
                delay = per_request * per_batch
                stop(process, grace=120)
                for stale in glob.glob(f"{out}*"):
                    os.unlink(stale)
                continue
            subprocess.run(
                ["callgrind_control", "-i", "on", str(process.pid)], capture_output=True, check=True
            )
            _get(connection, path, count)
            subprocess.run(
                ["callgrind_control", "-i", "off", str(process.pid)], capture_output=True, check=True
            )
            subprocess.run(["callgrind_control", "-d", str(process.pid)], capture_output=True, check=True)
    finally:
        connection.close()
        if process is not None:
            stop(process, grace=120)
    total = 0
    for dump in glob.glob(f"{out}*"):
        for line in Path(dump).read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                total = max(total, int(line.split()[1]))
    return total / count


def _connect(port: int) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", port, timeout=120)


def _wait(base: str, process: subprocess.Popen[bytes]) -> None:
    wait_until(
        lambda: http_status(f"{base}/healthz", 10) == 200, 300, "the gateway under valgrind", process, 0.2
    )


def _manifest_path(connection: http.client.HTTPConnection) -> str:
    connection.request("HEAD", f"/v2/{REPOSITORY}/manifests/v1", headers={"Accept": "*/*"})
    response = connection.getresponse()
    response.read()
    return f"/v2/{REPOSITORY}/manifests/{response.headers['Docker-Content-Digest']}"


def _get(connection: http.client.HTTPConnection, path: str, count: int) -> None:
    for _ in range(count):
        connection.request("GET", path, headers={"Accept": "*/*"})
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--requests-per-batch", type=int, default=250, help="~5,000 req/s x 50 ms")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed: apt-get install valgrind")
    with running("ocigate-cost-") as services:
        redis_url = services.redis()
        costs = {v: measure(v, services, redis_url, args.requests, args.requests_per_batch) for v in VARIANTS}
    print(
        f"manifest GET by digest, {args.requests} sequential requests, user-space instructions per request:"
    )
    for variant, cost in costs.items():
        baseline = VARIANTS[variant][2]
        print(f"  {variant:9} {cost:10,.0f}  {100 * (cost / costs[baseline] - 1):+5.1f}% vs {baseline}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
