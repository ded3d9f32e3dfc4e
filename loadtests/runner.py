"""`loadtests/run`: start a gateway (or use one), run Locust headless for a bounded time, report.

Scenarios:
  throughput   pullers and pushers; limits off on a started gateway (the load is one client)
  limits       probers saturating one client: admitted ≤ RPSxT + burst and ≥ 95% of it;
               every 429 carries Retry-After, RateLimit-* and the TOOMANYREQUESTS body code
  connections  --connections-probe connections at once from one client: LIMIT served, the rest refused
  node-storm   --nodes nodes, each from its own loopback address, pull one multi-layer image at
               once as containerd does (auth on, limits on): see loadtests/node_storm.py. With
               --ceph on a throwaway Ceph RGW (else on what OCIGATE_BLOB_STORE/OCIGATE_S3_* say)
  all          limits, connections, throughput

Each run writes to --out: Locust's CSV and HTML, counts.json, summary.txt (printed) and
summary.json. Exit status 1 when a check fails. The limits come from OCIGATE_LIMIT_* (or the
flags), exactly as the gateway reads them, so changing the env changes the limits and the report.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import node_storm  # noqa: E402
from connections import run_probe  # noqa: E402
from services import Gateway, Services  # noqa: E402

ADMIN_PASSWORD = "load-admin-password"  # of the gateways the node storm starts (auth on)


@dataclass
class Limits:
    rps: float
    burst: int
    connections: int

    @classmethod
    def from_env(cls, args: argparse.Namespace) -> Limits:
        rps = float(args.rps if args.rps is not None else os.environ.get("OCIGATE_LIMIT_RPS", "60"))
        burst = int(args.burst if args.burst is not None else os.environ.get("OCIGATE_LIMIT_BURST", "0"))
        connections = int(
            args.limit_connections
            if args.limit_connections is not None
            else os.environ.get("OCIGATE_LIMIT_CONNECTIONS", "100")
        )
        return cls(rps, burst or max(1, round(rps)), connections)

    def env(self) -> dict[str, str]:
        return {
            "OCIGATE_LIMIT_RPS": f"{self.rps:g}",
            "OCIGATE_LIMIT_BURST": str(self.burst),
            "OCIGATE_LIMIT_CONNECTIONS": str(self.connections),
        }


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    checks: list[tuple[str, bool]] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def say(self, line: str) -> None:
        self.lines.append(line)

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append((name, ok))
        self.say(f"  {'PASS' if ok else 'FAIL'}  {name}: {detail}")

    @property
    def passed(self) -> bool:
        return all(ok for _, ok in self.checks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="loadtests/run", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--scenario", choices=["throughput", "limits", "connections", "node-storm", "all"], default="all"
    )
    parser.add_argument("--url", help="test this running gateway instead of starting one")
    parser.add_argument("--time", type=float, default=10.0, help="seconds of load per Locust run")
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1, help="--workers of the started gateway")
    parser.add_argument("--replicas", type=int, default=1, help="started gateways (they share Redis)")
    parser.add_argument("--redis", action="store_true", help="start Redis and share limits through it")
    parser.add_argument("--rps", help="default: OCIGATE_LIMIT_RPS or 60")
    parser.add_argument("--burst", help="default: OCIGATE_LIMIT_BURST or one second's worth")
    parser.add_argument("--limit-connections", help="default: OCIGATE_LIMIT_CONNECTIONS or 100")
    parser.add_argument("--connections-probe", type=int, default=150)
    parser.add_argument("--throughput-limits", action="store_true", help="keep the limits on for throughput")
    parser.add_argument("--nodes", type=int, default=20, help="node-storm: nodes pulling at once")
    parser.add_argument("--layers", type=int, default=5, help="node-storm: layers of the image")
    parser.add_argument("--layer-mib", type=float, default=4, help="node-storm: MiB of each layer")
    parser.add_argument(
        "--cache", action="store_true", help="node-storm: the edge cache on (OCIGATE_CACHE_DIR)"
    )
    parser.add_argument("--ceph", action="store_true", help="node-storm: blobs on a throwaway Ceph RGW")
    parser.add_argument("--out", type=Path, help="report directory (default loadtests/reports/<time>)")
    args = parser.parse_args(argv)

    limits = Limits.from_env(args)
    out = args.out or HERE / "reports" / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    scenarios = ["limits", "connections", "throughput"] if args.scenario == "all" else [args.scenario]
    report = Report()
    report.say(f"ocigate load test → {out}")
    with tempfile.TemporaryDirectory(prefix="ocigate-load-") as workdir:
        for scenario in scenarios:
            services = Services(Path(workdir) / scenario)
            services.workdir.mkdir(parents=True)
            try:
                urls = _targets(args, services, limits, scenario)
                if scenario == "node-storm":
                    pids = [p.popen.pid for p in services.processes if isinstance(p, Gateway) and p.popen]
                    basic = os.environ.get("LOADTEST_BASIC") if args.url else f"admin:{ADMIN_PASSWORD}"
                    node_storm.scenario(args, urls, out / scenario, report, pids, basic)
                else:
                    _SCENARIOS[scenario](args, limits, urls, out / scenario, report)
            finally:
                services.stop()
    summary = "\n".join(report.lines) + f"\n{'PASSED' if report.passed else 'FAILED'}\n"
    (out / "summary.txt").write_text(summary)
    (out / "summary.json").write_text(json.dumps({"passed": report.passed, **report.figures}, indent=1))
    print(summary, end="")
    return 0 if report.passed else 1


def _targets(args: argparse.Namespace, services: Services, limits: Limits, scenario: str) -> list[str]:
    if args.url:
        return [args.url.rstrip("/")]
    env = limits.env()
    if scenario == "throughput" and not args.throughput_limits:
        env = {"OCIGATE_LIMIT_RPS": "0", "OCIGATE_LIMIT_CONNECTIONS": "0"}
    if scenario == "node-storm":  # as a cluster pulls: a token per node, limits on
        env |= {"OCIGATE_AUTH": "token", "OCIGATE_ADMIN_PASSWORD": ADMIN_PASSWORD}
        if args.cache:
            env["OCIGATE_CACHE_DIR"] = str(services.workdir / "edge-cache")
        if args.ceph:
            env |= _ceph(services)
    if args.workers > 1:
        env["OCIGATE_WORKERS"] = str(args.workers)
    if args.redis or args.replicas > 1:
        env["OCIGATE_REDIS_URL"] = services.redis()
    return [services.gateway(f"gateway{index}", env).url for index in range(args.replicas)]


def _ceph(services: Services) -> dict[str, str]:
    """A throwaway Ceph RGW (stopped with the services); the gateway's settings for it (SSE-KMS)."""
    from tests.harness.ceph import CephCluster

    ceph = CephCluster(services.workdir / "ceph")
    services.processes.append(_CephDown(ceph))
    exported = ceph.up()
    return {
        "AWS_ACCESS_KEY_ID": exported["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": exported["AWS_SECRET_ACCESS_KEY"],
        "AWS_DEFAULT_REGION": exported["AWS_DEFAULT_REGION"],
        "OCIGATE_BLOB_STORE": "s3",
        "OCIGATE_S3_ENDPOINT_URL": exported["S3_ENDPOINT_URL"],
        "OCIGATE_S3_BUCKET": "node-storm",
        "OCIGATE_S3_ADDRESSING_STYLE": "path",
        "OCIGATE_S3_SSE": "aws:kms",
        "OCIGATE_S3_SSE_KMS_KEY_ID": exported["CEPH_KMS_KEY_ID"],
    }


@dataclass
class _CephDown:
    ceph: Any

    def stop(self) -> None:
        self.ceph.down()


def _setup_line(args: argparse.Namespace, limits: Limits, urls: list[str]) -> str:
    where = args.url or f"{len(urls)} gateway(s) x {args.workers} process(es)"
    shared = "Redis" if (args.redis or args.replicas > 1) else "in-process"
    return (
        f"  target {where}, limiter state {shared}; limits {limits.rps:g} rps, burst {limits.burst}, "
        f"{limits.connections} connections"
    )


def _locust(
    args: argparse.Namespace, urls: list[str], out: Path, users: list[str], env: dict[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    out.mkdir(parents=True, exist_ok=True)
    counts_path = out / "counts.json"
    full_env = {**os.environ, "LOADTEST_COUNTS": str(counts_path), "LOADTEST_TARGETS": " ".join(urls), **env}
    node_storm.run_locust(urls[0], args.users, max(args.users, 1) * 10, args.time, out, users, full_env)
    counts = json.loads(counts_path.read_text()) if counts_path.exists() else {}
    aggregated: dict[str, str] = {}
    stats_path = out / "locust_stats.csv"
    if stats_path.exists():
        with stats_path.open() as stats:
            for row in csv.DictReader(stats):
                if row.get("Name") == "Aggregated":
                    aggregated = row
    return counts, aggregated


def _traffic_line(counts: dict[str, Any], aggregated: dict[str, str]) -> str:
    total = sum(counts.get("statuses", {}).values())
    limited = counts.get("statuses", {}).get("429", 0)
    elapsed = max(counts.get("elapsed", 0.0), 1e-9)
    megabytes = (counts.get("bytes_down", 0) + counts.get("bytes_up", 0)) / 1e6
    share = 100 * limited / total if total else 0.0
    return (
        f"  {float(aggregated.get('Requests/s') or 0):.1f} req/s  {megabytes / elapsed:.1f} MB/s  "
        f"p50 {aggregated.get('50%', '-')} ms  p95 {aggregated.get('95%', '-')} ms  "
        f"p99 {aggregated.get('99%', '-')} ms  429s {share:.1f}% of {total}"
    )


def scenario_limits(
    args: argparse.Namespace, limits: Limits, urls: list[str], out: Path, report: Report
) -> None:
    report.say(f"limits: {args.users} probers from one client for {args.time:g} s")
    report.say(_setup_line(args, limits, urls))
    counts, aggregated = _locust(args, urls, out, ["ProbeUser"], {})
    report.say(_traffic_line(counts, aggregated))
    admitted, window = counts.get("probe_admitted", 0), counts.get("probe_window", 0.0)
    inner = counts.get("probe_inner_window", 0.0)  # see Counts in locustfile.py
    bound = limits.rps * window + limits.burst
    floor = 0.95 * (limits.rps * inner + limits.burst)
    steady = (admitted - limits.burst) / window if window else 0.0
    report.check(
        "admitted ≤ RPSxT + burst", admitted <= bound, f"{admitted} ≤ {bound:.1f} (T = {window:.2f} s)"
    )
    report.check(
        "admitted ≥ 95% of it",
        admitted >= floor,
        f"{admitted} ≥ {floor:.1f} (T less latencies = {inner:.2f} s)",
    )
    report.say(f"        admitted rate past the burst: {steady:.1f}/s for a limit of {limits.rps:g}/s")
    bad = counts.get("bad_429_count", 0)
    report.check(
        "every 429 has Retry-After, RateLimit-* and TOOMANYREQUESTS",
        bad == 0 and counts.get("probe_limited", 0) > 0,
        f"{counts.get('probe_limited', 0)} checked, {bad} bad {counts.get('bad_429', [])[:3]}",
    )
    report.figures["limits"] = {
        "rps": limits.rps,
        "burst": limits.burst,
        "admitted": admitted,
        "window": window,
        "bound": bound,
        "floor": floor,
        "steady_rps": steady,
        "limited": counts.get("probe_limited", 0),
        "bad_429": bad,
        "requests_per_s": float(aggregated.get("Requests/s") or 0),
    }


def scenario_connections(
    args: argparse.Namespace, limits: Limits, urls: list[str], out: Path, report: Report
) -> None:
    count = args.connections_probe
    report.say(f"connections: {count} at once from one client over {len(urls)} gateway(s)")
    counts = run_probe(urls, count)
    expected = min(count, limits.connections) if limits.connections else count
    report.check(
        f"{expected} served, {count - expected} refused",
        counts.served == expected and counts.refused == count - expected,
        f"{counts.served} served, {counts.refused} refused",
    )
    report.figures["connections"] = {
        "opened": counts.opened,
        "served": counts.served,
        "refused": counts.refused,
    }


def scenario_throughput(
    args: argparse.Namespace, limits: Limits, urls: list[str], out: Path, report: Report
) -> None:
    report.say(f"throughput: {args.users} users (pullers 3 : pushers 1) for {args.time:g} s")
    counts, aggregated = _locust(args, urls, out, ["PullerUser", "PusherUser"], {})
    report.say(_traffic_line(counts, aggregated))
    statuses = counts.get("statuses", {})
    broken = sum(n for status, n in statuses.items() if status.startswith("5") or status in ("0", "error"))
    report.check("no 5xx, no broken connections", broken == 0 and bool(statuses), f"statuses {statuses}")
    refused = sum(n for status, n in statuses.items() if status.startswith("4") and status != "429")
    if refused:
        report.say(f"        note: {refused} 4xx answers (see {out / 'locust_failures.csv'})")
    report.figures["throughput"] = {
        "requests_per_s": float(aggregated.get("Requests/s") or 0),
        "p50": aggregated.get("50%"),
        "p95": aggregated.get("95%"),
        "p99": aggregated.get("99%"),
        "statuses": statuses,
    }


_SCENARIOS = {
    "limits": scenario_limits,
    "connections": scenario_connections,
    "throughput": scenario_throughput,
}

if __name__ == "__main__":
    sys.exit(main())
