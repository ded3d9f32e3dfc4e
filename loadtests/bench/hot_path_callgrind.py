"""bench_hot_path.py counted instead of timed: user-space instructions per manifest GET and HEAD by
tag (auth on, a bearer JWT on every request; the limiter on but set high) of ocigate and of the
bare aiohttp+uvloop server, under callgrind. Steady where requests per second on a shared machine
are not (the ratio moves by ~2% between runs: timers and event-loop wake-ups differ); kernel time
is not counted (it is about the same for both: the same bytes in and out).

    .venv/bin/python loadtests/bench/hot_path_callgrind.py [--requests 2000] [--source DIR]...

Each server runs under callgrind with instrumentation off, gets 200 warm-up requests on one
keep-alive connection, then exactly N with instrumentation on. `--source` (repeatable) counts
ocigate from other checkouts too (e.g. `git archive` of an older commit), for A/B of a change.
Needs valgrind.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import callgrind  # noqa: E402
from bench_hot_path import ocigate_env, seed  # noqa: E402
from bench_registry import MANIFEST_TYPE, REPO, Server  # noqa: E402
from services import REPO_ROOT, serve_argv  # noqa: E402

from tests.harness.processes import free_port, http_status, stop, wait_until  # noqa: E402


def _requests(port: int, method: str, token: str, count: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Authorization": f"Bearer {token}", "Accept": MANIFEST_TYPE}
    try:
        for _ in range(count):
            connection.request(method, f"/v2/{REPO}/manifests/v1", headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"{method}: {response.status}")
    finally:
        connection.close()


def instructions(
    argv: list[str], env: dict[str, str], port: int, method: str, token: str, count: int
) -> float:
    out = Path(tempfile.mkdtemp(prefix="ocigate-cg-")) / "callgrind.out"
    process = callgrind.started(argv, env, out, REPO_ROOT)
    try:
        wait_until(
            lambda: http_status(f"http://127.0.0.1:{port}/v2/", 10) > 0,
            300,
            "a server under valgrind",
            process,
            0.2,
        )
        _requests(port, method, token, 200)
        callgrind.counted(process.pid, lambda: _requests(port, method, token, count))
    finally:
        stop(process, grace=120)
    return callgrind.total(out) / count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--source", type=Path, action="append", default=[], help="another checkout")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ocigate-hot-cg-"))
    port = free_port()
    env = ocigate_env(port, tmp / "ocigate")
    seeding = Server("ocigate", serve_argv(), env, port, tmp / "seed.log", None)
    seeding.start()
    try:
        token, headers, body = asyncio.run(seed(seeding.url))
    finally:
        seeding.stop()
    spec = tmp / "response.json"
    spec.write_text(json.dumps({"headers": headers, "body_hex": body.hex()}))
    bare_port = free_port()
    servers = [("ocigate", serve_argv(), port)]
    servers += [(f"ocigate {source}", serve_argv(source), port) for source in args.source]
    servers.append(
        ("bare", [sys.executable, str(HERE / "bare_server.py"), str(bare_port), str(spec)], bare_port)
    )
    counts: dict[tuple[str, str], float] = {}
    for method in ("GET", "HEAD"):
        for name, argv, server_port in servers:
            counts[name, method] = instructions(argv, env, server_port, method, token, args.requests)
    for method in ("GET", "HEAD"):
        bare = counts["bare", method]
        for name, _, _ in servers[:-1]:
            mine = counts[name, method]
            print(
                f"{method:<4} {name}: {mine:,.0f} instructions per request, bare {bare:,.0f}: "
                f"{bare / mine:.1%} of the bare server's"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
