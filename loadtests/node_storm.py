"""The `node-storm` scenario of loadtests/run: N nodes pull one multi-layer image at once (each
node a Locust `NodeUser` from a loopback address of its own: loadtests/node_user.py).

Reported: time until every node has the image (first node's start → last node's end), p50/p99
of the nodes' pull times, how far apart the nodes started, bytes the gateway read from the store
(its own `ocigate_store_read_bytes_total`, as a multiple of the image), S3 GetObject calls, 429s
and other refusals, and the gateway's peak RSS (the kernel's VmHWM of each process: supervisor
and workers). Checks: every node got the exact bytes; no error; no 429; with the edge cache on,
the store sent at most one copy of the image per gateway process (a process reads a blob once,
then the cache holds it; without the cache there is no such promise: a node that comes after a
read ended starts another).

Also used by loadtests/bench/node_storm.py, which runs the same storm against other registries.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from seed import node_image_blobs, push_node_image  # noqa: E402
from services import REPO_ROOT  # noqa: E402

MIB = 1 << 20
LOCUST_GRACE = 60  # seconds past --time before a Locust run is killed
STORE_BYTES = "ocigate_store_read_bytes_total"
S3_GETS = 'ocigate_s3_requests_total{operation="GetObject"}'


@dataclass
class Storm:
    """What one storm is: nodes, the image, and where the nodes' Basic credentials come from."""

    nodes: int
    layers: int = 5
    layer_mib: float = 4
    basic: str | None = None  # user:password for the token realm (None: anonymous pulls)
    time_limit: float = 600  # seconds before Locust is stopped, done or not

    def blobs(self) -> list[bytes]:
        return node_image_blobs(self.layers, int(self.layer_mib * MIB))


def seed(url: str, storm: Storm) -> dict[str, Any]:
    basic = tuple(storm.basic.split(":", 1)) if storm.basic else None
    return push_node_image(url, storm.blobs(), basic)  # type: ignore[arg-type]


def metrics(url: str) -> dict[str, float]:
    """ocigate's /metrics as {series: value} ({} from a registry without them)."""
    try:
        response = requests.get(f"{url}/metrics", timeout=30, headers={"Connection": "close"})
    except requests.RequestException:
        return {}
    if response.status_code != 200:
        return {}
    figures = {}
    for line in response.text.splitlines():
        match = re.fullmatch(r"(ocigate_[a-z_]+(?:\{[^}]*\})?) ([-0-9.e+]+)", line)
        if match:
            figures[match.group(1)] = float(match.group(2))
    return figures


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (a gateway's supervisor and workers)."""
    pids, index = [pid], 0
    while index < len(pids):
        try:
            children = Path(f"/proc/{pids[index]}/task/{pids[index]}/children").read_text().split()
        except OSError:
            children = []
        pids.extend(int(child) for child in children)
        index += 1
    return pids


def peak_rss(pids: list[int]) -> dict[str, float]:
    """VmHWM (peak resident set) of every process of the trees at `pids`, in MB: the largest one
    and their sum."""
    peaks = []
    for pid in (p for root in pids for p in process_tree(root)):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
        if match:
            peaks.append(int(match.group(1)) * 1024 / 1e6)
    return {"max_mb": max(peaks, default=0.0), "sum_mb": sum(peaks), "processes": len(peaks)}


def run_locust(
    host: str,
    users: int,
    spawn_rate: int,
    seconds: float,
    out: Path,
    user_classes: list[str],
    env: dict[str, str],
) -> None:
    """Locust headless on loadtests/locustfile.py for at most `seconds` (killed a minute later);
    its CSV, HTML and log in `out`."""
    command = [
        str(Path(sys.executable).with_name("locust")),
        *("-f", str(HERE / "locustfile.py"), "--headless", "--host", host),
        *("--users", str(users), "--spawn-rate", str(spawn_rate)),
        *("--run-time", f"{seconds:g}s", "--stop-timeout", "5"),
        *("--csv", str(out / "locust"), "--html", str(out / "report.html")),
        *("--only-summary", "--loglevel", "WARNING"),
        *user_classes,
    ]
    with (out / "locust.log").open("wb") as log:
        subprocess.run(
            command,
            env=env,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=seconds + LOCUST_GRACE,
            check=False,
        )


def run_storm(url: str, storm: Storm, image: dict[str, Any], out: Path) -> dict[str, Any]:
    """Locust with `storm.nodes` NodeUsers against `url`, until every node is done; the figures."""
    out.mkdir(parents=True, exist_ok=True)
    nodes_path = out / "nodes.json"
    nodes_path.unlink(missing_ok=True)
    env = {
        **os.environ,
        "LOADTEST_IMAGE": json.dumps(image),
        "LOADTEST_NODES": str(nodes_path),
        "LOADTEST_COUNTS": str(out / "counts.json"),
    }
    env.pop("LOADTEST_BASIC", None)
    if storm.basic:
        env["LOADTEST_BASIC"] = storm.basic
    # all spawned within a twentieth of a second; they start together once all are
    run_locust(url, storm.nodes, storm.nodes * 20, storm.time_limit, out, ["NodeUser"], env)
    nodes = json.loads(nodes_path.read_text()) if nodes_path.exists() else []
    return figures(nodes, storm, image)


def figures(nodes: list[dict[str, Any]], storm: Storm, image: dict[str, Any]) -> dict[str, Any]:
    times = sorted(node["end"] - node["start"] for node in nodes)
    statuses: dict[str, int] = {}
    for node in nodes:
        for status, n in node["statuses"].items():
            statuses[status] = statuses.get(status, 0) + n
    refused = sum(n for status, n in statuses.items() if not status.startswith("2") and status != "401")
    return {
        "nodes": storm.nodes,
        "finished": len(nodes),
        "exact": sum(1 for node in nodes if node["ok"]),
        "errors": sorted({node["error"] for node in nodes if not node["ok"]})[:5],
        "image_bytes": image["blob_bytes"],
        "layers": storm.layers,
        "seconds": max((n["end"] for n in nodes), default=0) - min((n["start"] for n in nodes), default=0),
        "start_spread": max((n["start"] for n in nodes), default=0)
        - min((n["start"] for n in nodes), default=0),
        "p50": statistics.median(times) if times else None,
        "p99": times[min(len(times) - 1, round(0.99 * (len(times) - 1)))] if times else None,
        "statuses": statuses,
        "too_many_requests": statuses.get("429", 0),
        "refused": refused,
    }


def scenario(args: Any, urls: list[str], out: Path, report: Any, pids: list[int], basic: str | None) -> None:
    """loadtests/run --scenario node-storm."""
    url = urls[0]
    storm = Storm(args.nodes, args.layers, args.layer_mib, basic)
    report.say(
        f"node-storm: {storm.nodes} nodes, each from its own loopback address, pull a {storm.layers}-layer "
        f"image of {storm.layers * storm.layer_mib:g} MiB from {url}"
    )
    image = seed(url, storm)
    time.sleep(2)  # metrics of the other workers are up to a second behind
    before = metrics(url)
    result = run_storm(url, storm, image, out)
    time.sleep(2.5)
    after = metrics(url)
    result["rss"] = peak_rss(pids)
    store = after.get(STORE_BYTES, 0) - before.get(STORE_BYTES, 0) if STORE_BYTES in after else None
    result["store_bytes"] = store
    result["s3_gets"] = after.get(S3_GETS, 0) - before.get(S3_GETS, 0) if S3_GETS in after else None
    report.say(summary(result))
    report.check(
        "every node has the exact image",
        result["exact"] == storm.nodes,
        f"{result['exact']} of {storm.nodes} ({result['finished']} finished) {result['errors']}",
    )
    report.check("no 429", result["too_many_requests"] == 0, f"statuses {result['statuses']}")
    report.check(
        "no refusal", result["refused"] == 0, f"{result['refused']} non-2xx besides the 401 challenges"
    )
    processes = args.workers * len(urls)
    if store is not None and args.cache:
        bound = processes * image["blob_bytes"]
        report.check(
            "the store sent at most one image per gateway process",
            store <= bound,
            f"{store / image['blob_bytes']:.2f} images for {processes} process(es)",
        )
    report.figures["node_storm"] = result


def summary(result: dict[str, Any]) -> str:
    store = result.get("store_bytes")
    moved = "n/a" if store is None else f"{store / result['image_bytes']:.2f}x the image"
    rss = result.get("rss") or {}
    return (
        f"  {result['exact']}/{result['nodes']} nodes have the image after {result['seconds']:.1f} s "
        f"(started within {result['start_spread']:.2f} s); per node p50 {result['p50'] or 0:.1f} s, "
        f"p99 {result['p99'] or 0:.1f} s; store sent {moved}; {result['too_many_requests']} 429s; "
        f"peak RSS {rss.get('max_mb', 0):.0f} MB (largest process), {rss.get('sum_mb', 0):.0f} MB "
        f"(all {rss.get('processes', 0)})"
    )
