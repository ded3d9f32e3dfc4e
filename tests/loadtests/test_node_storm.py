"""A short node storm on Ceph RGW (SSE-KMS): the `loadtests/run --scenario node-storm` the
benchmarks run, at a size CI can afford. Twenty nodes, each from a loopback address of its own,
pull a 5-layer image at once through one gateway (one process) with auth, limits and the edge
cache on. Every node must get the exact bytes with no error and no 429, and the store must have
sent what coalescing promises: one copy of the image, against one per node without it. (One
process: with two workers the promise is one copy per worker, which a worker can exceed when the
other holds the fill lock of a blob — see the README's node-storm figures.)

The connection limit is set to 8 per client: twenty nodes sharing one address would be refused,
so a run that passes also shows that each node is a client of its own."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.services.ceph import S3Service, new_bucket

ROOT = Path(__file__).resolve().parents[2]
NODES, LAYERS, LAYER_MIB = 20, 5, 1


def test_node_storm_on_ceph(tmp_path: Path, ceph_s3: S3Service) -> None:
    env = {
        **os.environ,
        **ceph_s3.settings("aws:kms", new_bucket()),
        "OCIGATE_LIMIT_CONNECTIONS": "8",
    }
    command = [
        str(ROOT / "loadtests" / "run"),
        *("--scenario", "node-storm", "--out", str(tmp_path)),
        *("--nodes", str(NODES), "--layers", str(LAYERS), "--layer-mib", str(LAYER_MIB)),
        "--cache",
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    storm = json.loads((tmp_path / "summary.json").read_text())["node_storm"]
    assert storm["exact"] == NODES, output
    assert storm["too_many_requests"] == 0, output
    assert storm["refused"] == 0, output
    assert storm["statuses"]["401"] == NODES  # each node was challenged once and took a token
    image = storm["image_bytes"]
    assert image > LAYERS * LAYER_MIB << 20
    # the gateway's own count: one copy of the image came from S3, for twenty nodes
    assert storm["store_bytes"] == image, output
    assert storm["rss"]["processes"] == 1
    assert storm["rss"]["max_mb"] > 0
