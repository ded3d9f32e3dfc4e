"""What the per-request metrics cost: manifest GET throughput with OCIGATE_METRICS=off and on.

    .venv/bin/python loadtests/metrics_overhead.py [--duration 10] [--repeat 5] [--workers 1]
    .venv/bin/python loadtests/metrics_overhead.py --callgrind [--requests 2000] [--baseline DIR]

Starts two gateways of the same build (embedded default, OCIGATE_AUTH=none, limiter on with
limits far above the load, as shipped but never refusing), one with OCIGATE_METRICS=off, seeds
the same image into both, then runs `wrk` on `GET /v2/<repo>/manifests/v1` against each in
turn, alternating the order in every repetition, and prints the median of the paired ratios
on/off: req/s and the gateway's CPU time per request (user + system, all its processes).
With two or more CPUs the gateways are pinned to CPU 0 and wrk to CPU 1 (--no-pin to share);
`--workers 2` runs two workers per gateway (prometheus_client in multiprocess mode; unpinned).
The issue's bar: at most 3% of the throughput.

`--callgrind` counts instead (steady where req/s on a shared machine is not): each gateway
runs under callgrind with instrumentation off, gets the image and 200 warm-up GETs, then
exactly N sequential GETs on one keep-alive connection with instrumentation on; printed are
user-space instructions per request (kernel time is not counted, so the share is an upper
bound of the throughput cost). The flush into prometheus_client, once a second, is stretched
to once every 50 s: under callgrind a request takes about 50 times as long, and a flush per
second of its time would be charged to 50 times fewer requests than at full speed.
`--baseline DIR` measures a third gateway running another checkout (e.g. `git archive` of the
commit before) the same way, for what the build costs with metrics off against it. Needs
valgrind.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import callgrind  # noqa: E402
from limiter_cost import _connect, _get, _wait  # noqa: E402
from seed import REPOSITORY, seed_image  # noqa: E402
from services import HIGH, REPO_ROOT, Services, free_port, running  # noqa: E402
from wrk import cpu_seconds, wrk  # noqa: E402

from tests.harness.processes import stop  # noqa: E402

# the gateway, with the flush period set from the command line (see the docstring)
_LAUNCH = (
    "import sys, types; root = sys.argv.pop(1); package = types.ModuleType('ocigate'); "
    "package.__path__ = [root]; sys.modules['ocigate'] = package; "
    "import ocigate.gateway.metrics as m; m.FLUSH_INTERVAL = float(sys.argv[1]); "
    "from ocigate.gateway.cli import main; sys.exit(main(['serve']))"
)


def instructions(services: Services, metrics: str, count: int, source: Path = REPO_ROOT) -> float:
    """User-space instructions per manifest GET of a gateway with OCIGATE_METRICS=`metrics`,
    running the checkout `source`."""
    port = free_port()
    env = {
        **os.environ,
        **HIGH,
        "OCIGATE_LISTEN": f"127.0.0.1:{port}",
        "OCIGATE_DATA_DIR": str(services.workdir / f"cg-{metrics}-{source.name}-data"),
        "OCIGATE_LOG_LEVEL": "warning",
        "OCIGATE_AUTH": "none",
        **({"OCIGATE_METRICS": metrics} if source == REPO_ROOT else {}),  # a baseline may not know it
    }
    out = services.workdir / f"{metrics}-{source.name}.callgrind"
    argv = [sys.executable, "-c", _LAUNCH, str(source), "50"]
    process = callgrind.started(argv, env, out, REPO_ROOT)
    connection = None
    try:
        base = f"http://127.0.0.1:{port}"
        _wait(base, process)
        seed_image(base)
        connection = live = _connect(port)
        path = f"/v2/{REPOSITORY}/manifests/v1"
        _get(live, path, 200)
        callgrind.counted(process.pid, lambda: _get(live, path, count))
    finally:
        if connection is not None:
            connection.close()
        stop(process, grace=120)
    return callgrind.total(out) / count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--baseline", type=Path, help="another checkout to measure (--callgrind)")
    args = parser.parse_args()
    if args.callgrind:
        if args.workers != 1:
            raise SystemExit(
                "--callgrind measures one process (callgrind_control does not reach forked workers)"
            )
        if shutil.which("valgrind") is None:
            raise SystemExit("valgrind is not installed: apt-get install valgrind")
        with running("ocigate-metrics-cost-") as services:
            off, on = (instructions(services, metrics, args.requests) for metrics in ("off", "on"))
            base = (
                None if args.baseline is None else instructions(services, "on", args.requests, args.baseline)
            )
        print(
            f"manifest GET by tag, {args.requests} sequential requests, user-space instructions per request:"
        )
        print(f"  metrics off {off:10,.0f}\n  metrics on  {on:10,.0f}  {100 * (on / off - 1):+.1f}%")
        if base is not None:
            print(f"  baseline    {base:10,.0f}  (metrics off {100 * (off / base - 1):+.1f}% against it)")
        return 0
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    pin = not args.no_pin and args.workers == 1 and (os.cpu_count() or 1) >= 2
    with running("ocigate-metrics-overhead-") as services:
        common = {**HIGH, "OCIGATE_WORKERS": str(args.workers)}
        variants = {
            "off": services.gateway("off", {**common, "OCIGATE_METRICS": "off"}),
            "on": services.gateway("on", {**common, "OCIGATE_METRICS": "on"}),
        }
        urls = {}
        for name, gateway in variants.items():
            seed_image(gateway.url)
            urls[name] = f"{gateway.url}/v2/{REPOSITORY}/manifests/v1"
            if pin:
                os.sched_setaffinity(gateway.popen.pid, {0})  # type: ignore[union-attr]
        rates: dict[str, list[float]] = {name: [] for name in variants}
        costs: dict[str, list[float]] = {name: [] for name in variants}
        order = list(variants)
        for repetition in range(args.repeat):
            for name in order if repetition % 2 == 0 else reversed(order):
                pid = variants[name].popen.pid  # type: ignore[union-attr]
                before = cpu_seconds(pid)
                rate, count = wrk(urls[name], args.duration, args.connections, 1 if pin else None)
                rates[name].append(rate)
                costs[name].append((cpu_seconds(pid) - before) / count * 1e6)
    paired = [on / off for on, off in zip(rates["on"], rates["off"], strict=True)]
    cpu = [on / off for on, off in zip(costs["on"], costs["off"], strict=True)]
    print(
        f"manifest GET by tag, wrk -t1 -c{args.connections}, {args.repeat} x {args.duration:g} s each, "
        f"{args.workers} worker(s), {'pinned' if pin else 'unpinned'}"
    )
    for name in variants:
        print(
            f"  metrics {name:3}  median {statistics.median(rates[name]):8.0f} req/s"
            f"  {statistics.median(costs[name]):6.1f} us CPU/request   all: "
            + " ".join(f"{rate:.0f}" for rate in rates[name])
        )
    print(
        f"  on/off: req/s {statistics.median(paired):.3f} (pairs {min(paired):.3f}-{max(paired):.3f}),"
        f" CPU/request {statistics.median(cpu):.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
