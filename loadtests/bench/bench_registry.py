"""Side-by-side benchmark: ocigate vs CNCF Distribution (`docker-registry`, 2.8) on one machine.

    python loadtests/bench/bench_registry.py [--duration 10] [--repeat 3] [--json out.json]

Starts both servers (loopback, free ports, temp data dirs), seeds identical content into both
(a small OCI image tagged `v1`, a 1 MiB and a 256 MiB blob), then for each repetition runs every
case against both servers, alternating which goes first, and reports medians and the
ocigate/Distribution ratio against the claimed targets. Read cases use `wrk` (request.lua); the
push case (200 x 1 MiB blobs, 16 concurrent clients, POST + PUT ?digest= per blob) is the aiohttp
client below, identical for both servers. With >= 2 CPUs the servers are pinned to --server-cpus
and this process, wrk and the push client to --client-cpus, the same for both servers.
MB = 10^6 bytes. Server CPU% = server process-tree CPU time / wall time of the case.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from yarl import URL

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
MIB = 1 << 20
REPO = "bench/app"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
PUSH_BLOBS, PUSH_SIZE, PUSH_CLIENTS = 200, MIB, 16
SEED_CHUNK = 32 * MIB


@dataclass(frozen=True)
class Case:
    name: str
    unit: str
    target: float  # claimed minimum ocigate/Distribution ratio
    method: str = "GET"
    path: str = ""
    connections: int = 64
    headers: tuple[str, ...] = ()


@dataclass
class Server:
    name: str
    argv: list[str]
    env: dict[str, str]
    port: int
    log_path: Path
    cpus: set[int] | None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        cpus = self.cpus
        pin: Callable[[], None] | None = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv, env=self.env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, preexec_fn=pin
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log_path.read_text()}")
            try:
                urllib.request.urlopen(f"{self.url}/v2/", timeout=1).close()
                return
            except urllib.error.HTTPError as exc:
                if exc.code < 500:
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer /v2/ in 60 s")

    def pids(self) -> list[int]:
        """The server process and its descendants (in case it forks workers)."""
        todo, seen = [self.proc.pid] if self.proc else [], []
        while todo:
            pid = todo.pop()
            seen.append(pid)
            for children in Path(f"/proc/{pid}/task").glob("*/children"):
                todo += [int(c) for c in children.read_text().split()]
        return seen

    def cpu_seconds(self) -> float:
        total = 0
        for pid in self.pids():
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        return total / os.sysconf("SC_CLK_TCK")

    def peak_rss_mib(self) -> float:
        kib = 0
        for pid in self.pids():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    kib += int(line.split()[1])
        return kib / 1024

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def distribution_config(root: Path, port: int) -> str:
    return f"""version: 0.1
log: {{level: error, accesslog: {{disabled: true}}}}
storage:
  filesystem: {{rootdirectory: {root}}}
  delete: {{enabled: true}}
  cache: {{blobdescriptor: inmemory}}
http: {{addr: "127.0.0.1:{port}", secret: ocigate-bench-secret}}
"""


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def upload(
    http: aiohttp.ClientSession, base: str, repo: str, data: bytes, digest: str | None = None
) -> str:
    """POST, optional PATCH chunks (> SEED_CHUNK), PUT ?digest=: the portable push flow."""
    digest = digest or sha256(data)
    async with http.post(f"{base}/v2/{repo}/blobs/uploads/") as resp:
        assert resp.status == 202, (resp.status, await resp.text())
        location = URL(base).join(URL(resp.headers["Location"]))
    body, offset = data, 0
    if len(data) > SEED_CHUNK:
        for offset in range(0, len(data), SEED_CHUNK):
            chunk = data[offset : offset + SEED_CHUNK]
            headers = {
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
            }
            async with http.patch(location, data=chunk, headers=headers) as resp:
                assert resp.status == 202, (resp.status, await resp.text())
                location = URL(base).join(URL(resp.headers["Location"]))
        body = b""
    async with http.put(
        location.update_query(digest=digest), data=body, headers={"Content-Type": "application/octet-stream"}
    ) as resp:
        assert resp.status == 201, (resp.status, await resp.text())
    return digest


async def seed(base: str, small: bytes, one: bytes, big: bytes) -> dict[str, str]:
    """Push identical content; returns the wrk paths of each read case."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as http:
        config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {}}).encode()
        digests = [await upload(http, base, REPO, blob) for blob in (config, small, one, big)]
        manifests: dict[str, bytes] = {}
        for tag, layers in (("v1", [(digests[1], small)]), ("blobs", [(digests[2], one), (digests[3], big)])):
            manifests[tag] = manifest = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": MANIFEST_TYPE,
                    "config": {
                        "mediaType": "application/vnd.oci.image.config.v1+json",
                        "digest": digests[0],
                        "size": len(config),
                    },
                    "layers": [
                        {
                            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            "digest": d,
                            "size": len(b),
                        }
                        for d, b in layers
                    ],
                }
            ).encode()
            async with http.put(
                f"{base}/v2/{REPO}/manifests/{tag}", data=manifest, headers={"Content-Type": MANIFEST_TYPE}
            ) as resp:
                assert resp.status == 201, (resp.status, await resp.text())
        # Sanity: both servers must serve exactly this content, or the figures mean nothing.
        async with http.get(f"{base}/v2/{REPO}/manifests/v1", headers={"Accept": MANIFEST_TYPE}) as resp:
            assert resp.status == 200, resp.status
            assert await resp.read() == manifests["v1"]
        for digest in digests[2:]:
            async with http.get(f"{base}/v2/{REPO}/blobs/{digest}", allow_redirects=False) as r:
                assert r.status == 200, (r.status, await r.text())
                assert sha256(await r.read()) == digest
    return {
        "manifest": f"/v2/{REPO}/manifests/v1",
        "blob1": f"/v2/{REPO}/blobs/{digests[2]}",
        "blob256": f"/v2/{REPO}/blobs/{digests[3]}",
    }


def run_wrk(server: Server, case: Case, duration: float, cpus: set[int] | None) -> dict[str, Any]:
    argv = [
        "wrk",
        "-t1",
        f"-c{case.connections}",
        f"-d{duration:g}s",
        "--timeout",
        "60s",
        "-s",
        str(HERE / "request.lua"),
    ]
    for header in case.headers:
        argv += ["-H", header]
    env = {**os.environ, "WRK_METHOD": case.method}
    cpu0, wall0 = server.cpu_seconds(), time.monotonic()
    out = subprocess.run(
        [*argv, server.url + case.path],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 120,
    ).stdout
    cpu_pct = 100 * (server.cpu_seconds() - cpu0) / (time.monotonic() - wall0)
    line = next(x for x in out.splitlines() if x.startswith("BENCH_JSON "))
    stats = json.loads(line.removeprefix("BENCH_JSON "))
    seconds = stats["duration_us"] / 1e6
    value = stats["bytes"] / seconds / 1e6 if case.unit == "MB/s" else stats["requests"] / seconds
    errors = sum(stats[k] for k in ("connect", "read", "write", "status", "timeout"))
    return {
        "value": value,
        "cpu_pct": cpu_pct,
        "errors": errors,
        "requests": stats["requests"],
        "p99_ms": stats["p99_us"] / 1000,
    }


async def push(server: Server, blobs: list[tuple[bytes, str]]) -> dict[str, Any]:
    queue: asyncio.Queue[tuple[bytes, str]] = asyncio.Queue()
    for item in blobs:
        queue.put_nowait(item)
    connector = aiohttp.TCPConnector(limit=PUSH_CLIENTS)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=300)) as http:

        async def client() -> None:
            while not queue.empty():
                data, digest = queue.get_nowait()
                await upload(http, server.url, "bench/push", data, digest)

        cpu0, client0, wall0 = server.cpu_seconds(), time.process_time(), time.monotonic()
        await asyncio.gather(*(client() for _ in range(PUSH_CLIENTS)))
        wall = time.monotonic() - wall0
    return {
        "value": len(blobs) * PUSH_SIZE / wall / 1e6,
        "blobs_per_s": len(blobs) / wall,
        "cpu_pct": 100 * (server.cpu_seconds() - cpu0) / wall,
        "client_cpu_pct": 100 * (time.process_time() - client0) / wall,
        "errors": 0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk run")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (median reported)")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of wrk warm-up per case")
    parser.add_argument("--json", type=Path, help="write all samples and medians here")
    parser.add_argument("--server-cpus", default="0", help="CPU list for both servers")
    parser.add_argument("--client-cpus", default="1", help="CPU list for wrk/push client")
    parser.add_argument("--no-pin", action="store_true", help="do not pin anything")
    parser.add_argument("--servers", default="ocigate,distribution", help="subset, for debugging")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (data, logs)")
    args = parser.parse_args()
    pin = not args.no_pin and len(os.sched_getaffinity(0)) >= 2
    server_cpus = {int(c) for c in args.server_cpus.split(",")} if pin else None
    client_cpus = {int(c) for c in args.client_cpus.split(",")} if pin else None
    if client_cpus:
        os.sched_setaffinity(0, client_cpus)  # wrk inherits it

    tmp = Path(tempfile.mkdtemp(prefix="ocigate-bench-"))
    dist_port, oci_port = free_port(), free_port()
    (tmp / "distribution.yml").write_text(distribution_config(tmp / "distribution", dist_port))
    servers = [
        Server(
            "ocigate",
            [sys.executable, "-m", "gateway.cli", "serve"],
            {
                **os.environ,
                "OCIGATE_LISTEN": f"127.0.0.1:{oci_port}",
                "OCIGATE_DATA_DIR": str(tmp / "ocigate"),
                "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
            },
            oci_port,
            tmp / "ocigate.log",
            server_cpus,
        ),
        Server(
            "distribution",
            ["docker-registry", "serve", str(tmp / "distribution.yml")],
            dict(os.environ),
            dist_port,
            tmp / "distribution.log",
            server_cpus,
        ),
    ]
    servers = [s for s in servers if s.name in args.servers.split(",")]
    ok = False
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    try:
        for server in servers:
            server.start()
        small, one, big = os.urandom(4096), os.urandom(MIB), os.urandom(256 * MIB)
        paths: dict[str, str] = {}
        for server in servers:  # identical content and therefore identical paths
            paths = asyncio.run(seed(server.url, small, one, big))
        accept = (f"Accept: {MANIFEST_TYPE}",)
        cases = [
            Case("GET manifest by tag", "req/s", 5, path=paths["manifest"], headers=accept),
            Case("HEAD blob (1 MiB)", "req/s", 5, "HEAD", paths["blob1"]),
            Case("GET blob 1 MiB", "MB/s", 1, path=paths["blob1"], connections=16),
            Case("GET blob 256 MiB", "MB/s", 1, path=paths["blob256"], connections=4),
            Case(f"push {PUSH_BLOBS}x1MiB, {PUSH_CLIENTS} clients", "MB/s", 1.5),
        ]
        for case in cases:
            if case.path and args.warmup > 0:
                for server in servers:
                    run_wrk(server, case, args.warmup, client_cpus)
        for rep in range(args.repeat):
            order = servers if rep % 2 == 0 else servers[::-1]
            for case in cases:
                for server in order:
                    if case.path:
                        sample = run_wrk(server, case, args.duration, client_cpus)
                    else:
                        blobs = [os.urandom(PUSH_SIZE) for _ in range(PUSH_BLOBS)]
                        sample = asyncio.run(push(server, [(b, sha256(b)) for b in blobs]))
                    results.setdefault(case.name, {}).setdefault(server.name, []).append(sample)
                    print(
                        f"  rep {rep + 1} {case.name:<30} {server.name:<12} "
                        f"{sample['value']:>10.1f} {case.unit}  server CPU "
                        f"{sample['cpu_pct']:.0f}%  errors {sample['errors']}",
                        flush=True,
                    )
        rss = {s.name: s.peak_rss_mib() for s in servers}
        ok = True
    finally:
        for server in servers:
            server.stop()
        if not ok or args.keep:
            print(f"data and server logs kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp)
    report = summarize(cases, results, rss, args, pin, server_cpus, client_cpus)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


def summarize(
    cases: list[Case],
    results: dict[str, dict[str, list[dict[str, Any]]]],
    rss: dict[str, float],
    args: argparse.Namespace,
    pin: bool,
    server_cpus: set[int] | None,
    client_cpus: set[int] | None,
) -> dict[str, Any]:
    def med(samples: list[dict[str, Any]], key: str) -> float:
        return statistics.median(s[key] for s in samples) if samples else float("nan")

    rows: dict[str, Any] = {}
    print(
        f"\n{'case':<30} {'unit':<6} {'ocigate':>10} {'distrib.':>10} {'ratio':>7} "
        f"{'target':>7}  verdict   (median of {args.repeat} x {args.duration:g} s)"
    )
    for case in cases:
        oci = results[case.name].get("ocigate", [])
        dist = results[case.name].get("distribution", [])
        ratio = med(oci, "value") / med(dist, "value")
        ok = ratio >= case.target and not any(s["errors"] for s in oci)  # nan -> FAIL
        print(
            f"{case.name:<30} {case.unit:<6} {med(oci, 'value'):>10.1f} "
            f"{med(dist, 'value'):>10.1f} {ratio:>6.2f}x {case.target:>6g}x  "
            f"{'PASS' if ok else 'FAIL'}"
        )
        rows[case.name] = {
            "unit": case.unit,
            "target": case.target,
            "ratio": ratio,
            "pass": ok,
            "connections": case.connections if case.path else PUSH_CLIENTS,
            "ocigate": oci,
            "distribution": dist,
        }
    print("\ndetails (medians): server CPU% / errors / p99 latency or push blobs/s, client CPU%")
    for case in cases:
        for name, samples in results[case.name].items():
            extra = (
                f"p99 {med(samples, 'p99_ms'):.1f} ms"
                if case.path
                else f"{med(samples, 'blobs_per_s'):.1f} blobs/s, "
                f"client CPU {med(samples, 'client_cpu_pct'):.0f}%"
            )
            print(
                f"  {case.name:<30} {name:<12} CPU {med(samples, 'cpu_pct'):>4.0f}%  "
                f"errors {sum(s['errors'] for s in samples)}  {extra}"
            )
    print("peak RSS (VmHWM): " + ", ".join(f"{k} {v:.0f} MiB" for k, v in rss.items()))
    print(
        f"pinning: servers CPU {sorted(server_cpus) if pin else 'any'}, "
        f"wrk/push client CPU {sorted(client_cpus) if pin else 'any'}"
    )
    return {
        "cases": rows,
        "peak_rss_mib": rss,
        "pinned": pin,
        "server_cpus": sorted(server_cpus or []),
        "client_cpus": sorted(client_cpus or []),
        "duration_s": args.duration,
        "repeat": args.repeat,
    }


if __name__ == "__main__":
    sys.exit(main())
