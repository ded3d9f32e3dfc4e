"""The hot path against a bare server: ocigate's manifest GET and HEAD by tag, with auth and the
limiter on, against a bare aiohttp+uvloop handler returning the same bytes (issue 17, part 3).

    .venv/bin/python loadtests/bench/bench_hot_path.py [--duration 10] [--repeat 3] [--source DIR]
        [--json out.json]

Starts ocigate (embedded default, `OCIGATE_AUTH=token`, the limiter on but set high: one
loopback client would otherwise get 429) and loadtests/bench/bare_server.py, each one process
pinned to --server-cpus, the load generators to --client-cpus. Seeds a small image tagged `v1`,
takes a bearer token for `repository:bench/app:pull` from /token (as docker does), answers the
bare server with ocigate's own response (body and headers), then runs each case against both
servers, alternating which goes first: GET manifest by tag (wrk, 32 connections, `Authorization:
Bearer`), HEAD manifest by tag (ab, 32 connections). Medians and ocigate / bare ratios; the
issue's target is >= 0.70.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_registry import (  # noqa: E402
    MANIFEST_TYPE,
    REPO,
    Case,
    Server,
    descriptor,
    run_case,
    upload,
)
from services import serve_argv  # noqa: E402

from tests.harness.processes import free_port  # noqa: E402

PASSWORD = "bench-admin-password"


async def seed(base: str) -> tuple[str, dict[str, str], bytes]:
    """A small image tagged v1; returns a pull token, and ocigate's answer to the GET."""
    auth = aiohttp.BasicAuth("admin", PASSWORD)
    async with aiohttp.ClientSession(auth=auth) as http:
        config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {}}).encode()
        layer = os.urandom(4096)
        for blob in (config, layer):
            await upload(http, base, REPO, blob)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST_TYPE,
                "config": descriptor("application/vnd.oci.image.config.v1+json", config),
                "layers": [descriptor("application/vnd.oci.image.layer.v1.tar+gzip", layer)],
            }
        ).encode()
        url = f"{base}/v2/{REPO}/manifests/v1"
        async with http.put(url, data=manifest, headers={"Content-Type": MANIFEST_TYPE}) as resp:
            assert resp.status == 201, (resp.status, await resp.text())
        params = {"service": "default", "scope": f"repository:{REPO}:pull"}
        async with http.get(f"{base}/token", params=params) as resp:
            assert resp.status == 200, (resp.status, await resp.text())
            token = (await resp.json())["token"]
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {token}", "Accept": MANIFEST_TYPE}
        async with http.get(url, headers=headers) as resp:
            assert resp.status == 200, (resp.status, await resp.text())
            body = await resp.read()
            kept = {
                name: value
                for name, value in resp.headers.items()
                if name.lower() not in ("content-length", "date", "server", "connection")
            }
    assert body == manifest
    return token, kept, body


def ocigate_env(port: int, data_dir: Path) -> dict[str, str]:
    """ocigate as measured here: auth on (a bearer JWT per request), the limiter on but set high."""
    return {
        **os.environ,
        "OCIGATE_LISTEN": f"127.0.0.1:{port}",
        "OCIGATE_DATA_DIR": str(data_dir),
        "OCIGATE_LOG_LEVEL": "warning",
        "OCIGATE_AUTH": "token",
        "OCIGATE_ADMIN_PASSWORD": PASSWORD,
        "OCIGATE_TOKEN_TTL": "3600",
        "OCIGATE_LIMIT_RPS": "1000000",
        "OCIGATE_LIMIT_CONNECTIONS": "100000",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10, help="seconds per load run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--server-cpus", default="0")
    parser.add_argument("--client-cpus", default="1")
    parser.add_argument("--max-other", type=float, default=20, help="re-measure above this CPU%% of others")
    parser.add_argument(
        "--ocigate-env", action="append", default=[], metavar="NAME=VALUE", help="extra ocigate setting"
    )
    parser.add_argument("--source", type=Path, help="run ocigate from this checkout (e.g. older code)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    pin = len(os.sched_getaffinity(0)) >= 2
    server_cpus = {int(c) for c in args.server_cpus.split(",")} if pin else None
    if pin:
        os.sched_setaffinity(0, {int(c) for c in args.client_cpus.split(",")})
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = Path(tempfile.mkdtemp(prefix="ocigate-hot-"))
    oci_port = free_port()
    extra = dict(item.split("=", 1) for item in args.ocigate_env)
    oci_env = {**ocigate_env(oci_port, tmp / "ocigate"), **extra}
    argv = serve_argv(args.source) if args.source else [sys.executable, "-m", "ocigate.gateway.cli", "serve"]
    ocigate = Server(
        "ocigate",
        argv,
        oci_env,
        oci_port,
        tmp / "ocigate.log",
        server_cpus,
    )
    servers = [ocigate]
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    try:
        ocigate.start()
        token, headers, body = asyncio.run(seed(ocigate.url))
        spec = tmp / "response.json"
        spec.write_text(json.dumps({"headers": headers, "body_hex": body.hex()}))
        bare_port = free_port()
        bare = Server(
            "bare",
            [sys.executable, str(HERE / "bare_server.py"), str(bare_port), str(spec)],
            dict(os.environ),
            bare_port,
            tmp / "bare.log",
            server_cpus,
        )
        servers.append(bare)
        bare.start()
        path = f"/v2/{REPO}/manifests/v1"
        sent = (f"Authorization: Bearer {token}", f"Accept: {MANIFEST_TYPE}")
        cases = [
            Case("GET manifest by tag", "req/s", 0.7, path, connections=args.connections, headers=sent),
            Case("HEAD manifest by tag", "req/s", 0.7, path, "HEAD", args.connections, sent),
        ]
        for case in cases:
            for server in servers:
                run_case(server, case, args.warmup, float("inf"))
        for rep in range(args.repeat):
            for case in cases:
                for server in servers if rep % 2 == 0 else servers[::-1]:
                    sample = run_case(server, case, args.duration, args.max_other)
                    results.setdefault(case.name, {}).setdefault(server.name, []).append(sample)
                    print(
                        f"  rep {rep + 1} {case.name:<22} {server.name:<8} {sample['value']:>9.0f} req/s "
                        f"errors {sample['errors']:g}, server CPU {sample['cpu_pct']:.0f}%",
                        flush=True,
                    )
    finally:
        for server in servers:
            server.stop()
    summary: dict[str, Any] = {}
    for case in cases:
        samples = results[case.name]
        oci, peer = (statistics.median(s["value"] for s in samples[name]) for name in ("ocigate", "bare"))
        # requests per server CPU-second: what a core buys, robust to CPU taken by other jobs
        oci_cpu, peer_cpu = (
            statistics.median(s["value"] * 100 / s["cpu_pct"] for s in samples[name] if s["cpu_pct"])
            for name in ("ocigate", "bare")
        )
        errors = sum(s["errors"] for runs in samples.values() for s in runs)
        summary[case.name] = {
            "ocigate": oci,
            "bare": peer,
            "ratio": oci / peer,
            "per_cpu_second": {"ocigate": oci_cpu, "bare": peer_cpu, "ratio": oci_cpu / peer_cpu},
            "errors": errors,
        }
        print(
            f"{case.name:<22} ocigate {oci:>8.0f} req/s, bare {peer:>8.0f} req/s: {oci / peer:.0%} "
            f"of the bare server (target 70%); per server CPU-second {oci_cpu:.0f} / {peer_cpu:.0f} "
            f"= {oci_cpu / peer_cpu:.0%}; errors {errors:g}"
        )
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "samples": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
