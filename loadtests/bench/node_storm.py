"""A rollout's pull storm against ocigate and CNCF Distribution on the same Ceph RGW, in one run.

    .venv/bin/python loadtests/bench/node_storm.py [--nodes 200] [--layers 5] [--layer-mib 60]
        [--repeat 1] [--workers 2] [--json out.json]

Starts its own throwaway Ceph (tests/services/ceph.sh, memstore) and, per case and round, a fresh
bucket and a fresh registry on it, pushes one image (an index, one linux/amd64 manifest, a config
and `--layers` random layers of `--layer-mib` MiB), then runs the `node-storm` scenario of
loadtests/run (loadtests/node_storm.py: Locust, `--nodes` nodes each on its own loopback
address, all starting together, pulling as containerd does, every body checked) against it.

Cases, interleaved round by round (A B C, then B C A, …):
  ocigate          `ocigate serve`, `--workers` processes, auth on (each node takes a token with
                   Basic credentials, as a pull secret does), limits on (as OCIGATE_LIMIT_* say;
                   as shipped: 60 rps, 100 connections per client), SSE-KMS, no edge cache: coalescing only
  ocigate+cache    the same with the edge cache on (OCIGATE_CACHE_DIR)
  distribution     Debian's docker-registry (CNCF Distribution 2.8.2; apt-get install
                   docker-registry), its S3 driver on the same RGW, `redirect:
                   disable` (it serves the bytes itself, as ocigate does; with redirects every node
                   reads S3 directly, which sends even more) and no auth: nodes pull anonymously
                   (no token round trip), the rest of the pattern is the same

S3 bytes are counted the same way for all: RGW's own counter of bytes it sent for GETs
(`get_b` of its perf counters, read through its admin socket) before and after the storm. For
ocigate its own `ocigate_store_read_bytes_total` is shown beside it. Peak RSS is VmHWM summed
over the registry's processes (and of the largest one). MiB = 2^20 bytes.

Both registries store blobs without server-side encryption by default (`--sse none`): with
`aws:kms` Distribution 2.8.2 fails every blob upload on this RGW (S3 NotImplemented, a 501, when it
completes the upload), so the equal footing is none; `--sse aws:kms` runs ocigate alone with it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from loadtests import node_storm as scenario
from loadtests.node_storm import Storm
from loadtests.services import Services, free_port
from tests.harness.ceph import CephCluster
from tests.harness.processes import ServiceError, http_status, stop, wait_until

ADMIN_PASSWORD = "storm-admin-password"
CASES = ("ocigate", "ocigate+cache", "distribution")


class Rgw:
    """The benchmark's Ceph: its S3 settings, buckets, and RGW's count of bytes sent."""

    def __init__(self, workdir: Path, memstore_gib: int) -> None:
        self.cluster = CephCluster(workdir / "ceph", MEMSTORE_BYTES=str(memstore_gib << 30))
        self.exported: dict[str, str] = {}

    def up(self) -> None:
        self.exported = self.cluster.up()

    def sent_bytes(self) -> int:
        """Bytes RGW sent in answers to object GETs since it started (`rgw.get_b`)."""
        conf = Path(self.exported["CEPH_CONF"])
        sockets = sorted((conf.parent / "run").glob("client.rgw*.asok"))
        if not sockets:
            raise ServiceError(f"no RGW admin socket under {conf.parent / 'run'}")
        dump = subprocess.run(
            ["ceph", "--admin-daemon", str(sockets[0]), "perf", "dump"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return int(json.loads(dump.stdout)["rgw"]["get_b"])

    def bucket(self) -> str:
        import botocore.session

        name = f"storm-{uuid.uuid4().hex[:12]}"
        client = botocore.session.get_session().create_client(
            "s3",
            endpoint_url=self.exported["S3_ENDPOINT_URL"],
            aws_access_key_id=self.exported["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.exported["AWS_SECRET_ACCESS_KEY"],
            region_name=self.exported["AWS_DEFAULT_REGION"],
        )
        client.create_bucket(Bucket=name)
        return name

    def purge(self, bucket: str) -> None:
        self.cluster.admin("bucket", "rm", f"--bucket={bucket}", "--purge-objects", "--bypass-gc")


def start_ocigate(
    services: Services, rgw: Rgw, bucket: str, workers: int, cache: bool, sse: str
) -> tuple[str, int]:
    env = {
        "AWS_ACCESS_KEY_ID": rgw.exported["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": rgw.exported["AWS_SECRET_ACCESS_KEY"],
        "AWS_DEFAULT_REGION": rgw.exported["AWS_DEFAULT_REGION"],
        "OCIGATE_AUTH": "token",
        "OCIGATE_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "OCIGATE_WORKERS": str(workers),
        "OCIGATE_BLOB_STORE": "s3",
        "OCIGATE_S3_ENDPOINT_URL": rgw.exported["S3_ENDPOINT_URL"],
        "OCIGATE_S3_BUCKET": bucket,
        "OCIGATE_S3_ADDRESSING_STYLE": "path",
        "OCIGATE_S3_SSE": sse,
        "OCIGATE_S3_PART_SIZE": str(16 << 20),
    }
    if sse == "aws:kms":
        env["OCIGATE_S3_SSE_KMS_KEY_ID"] = rgw.exported["CEPH_KMS_KEY_ID"]
    if cache:
        env["OCIGATE_CACHE_DIR"] = str(services.workdir / f"cache-{bucket}")
    gateway = services.gateway(f"ocigate-{bucket}", env)
    assert gateway.popen is not None
    return gateway.url, gateway.popen.pid


class Distribution:
    """Debian's docker-registry on the same RGW (S3 driver, no redirect, no auth)."""

    def __init__(self, workdir: Path, rgw: Rgw, bucket: str, sse: str) -> None:
        self.port = free_port()
        self.config = workdir / f"distribution-{bucket}.yml"
        exported = rgw.exported
        self.config.write_text(
            json.dumps(  # YAML is a superset of JSON
                {
                    "version": 0.1,
                    "log": {"level": "warn", "accesslog": {"disabled": True}},
                    "storage": {
                        "s3": {
                            "accesskey": exported["AWS_ACCESS_KEY_ID"],
                            "secretkey": exported["AWS_SECRET_ACCESS_KEY"],
                            "region": exported["AWS_DEFAULT_REGION"],
                            "regionendpoint": exported["S3_ENDPOINT_URL"],
                            "bucket": bucket,
                            "secure": False,
                            "v4auth": True,
                            "encrypt": sse == "aws:kms",
                            **({"keyid": exported["CEPH_KMS_KEY_ID"]} if sse == "aws:kms" else {}),
                            "chunksize": 16 << 20,
                        },
                        "redirect": {"disable": True},
                        "cache": {"blobdescriptor": "inmemory"},
                        "delete": {"enabled": True},
                    },
                    "http": {"addr": f"127.0.0.1:{self.port}"},
                }
            )
        )
        self.log = workdir / f"distribution-{bucket}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> tuple[str, int]:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                ["docker-registry", "serve", str(self.config)],
                # its AWS SDK refuses a CA bundle on a plain-HTTP endpoint
                env={k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_until(lambda: http_status(f"{self.url}/v2/") == 200, 60, "distribution", self.process, 0.1)
        except ServiceError as exc:
            raise ServiceError(f"{exc}: {self.log.read_text()[-2000:]}") from None
        return self.url, self.process.pid

    def stop(self) -> None:
        stop(self.process, grace=15)


def one_storm(rgw: Rgw, args: argparse.Namespace, tmp: Path, case: str, round_: int) -> dict[str, Any]:
    bucket = rgw.bucket()
    services = Services(tmp / f"{case}-{round_}")
    services.workdir.mkdir(parents=True)
    distribution: Distribution | None = None
    try:
        if case == "distribution":
            distribution = Distribution(services.workdir, rgw, bucket, args.sse)
            url, pid = distribution.start()
            basic = None
        else:
            url, pid = start_ocigate(services, rgw, bucket, args.workers, case == "ocigate+cache", args.sse)
            basic = f"admin:{ADMIN_PASSWORD}"
        storm = Storm(args.nodes, args.layers, args.layer_mib, basic, args.time_limit)
        image = scenario.seed(url, storm)
        time.sleep(2)  # ocigate's other workers flush their metrics about once a second
        before_rgw, before_own = rgw.sent_bytes(), scenario.metrics(url)
        result = scenario.run_storm(url, storm, image, services.workdir / "locust")
        time.sleep(2.5)
        after_rgw, after_own = rgw.sent_bytes(), scenario.metrics(url)
        result["rss"] = scenario.peak_rss([pid])
        result["s3_bytes"] = after_rgw - before_rgw
        if scenario.STORE_BYTES in after_own:
            key = scenario.STORE_BYTES
            result["store_bytes"] = after_own[key] - before_own.get(key, 0)
            result["reads"] = {  # how the gateway served it: flights, joins, spools, cache
                name.removeprefix("ocigate_"): after_own[name] - before_own.get(name, 0)
                for name in after_own
                if name.startswith(("ocigate_store_reads", "ocigate_blob_reads", "ocigate_edge_cache"))
                and name.endswith("_total")
            }
        return result
    finally:
        if distribution is not None:
            distribution.stop()
        services.stop()
        rgw.purge(bucket)


def row(case: str, result: dict[str, Any]) -> str:
    image = result["image_bytes"]
    own = result.get("store_bytes")
    return (
        f"{case:>14}: {result['exact']:>4}/{result['nodes']} exact in {result['seconds']:7.1f} s "
        f"(start spread {result['start_spread']:.2f} s), per node p50 {result['p50'] or 0:6.1f} s "
        f"p99 {result['p99'] or 0:6.1f} s; S3 sent {result['s3_bytes'] / image:7.2f}x the image"
        + ("" if own is None else f" (own metric {own / image:.2f}x)")
        + f"; 429s {result['too_many_requests']}, other refusals {result['refused']}; "
        f"peak RSS {result['rss']['sum_mb']:.0f} MB ({result['rss']['processes']} processes, "
        f"largest {result['rss']['max_mb']:.0f} MB)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--layer-mib", type=float, default=60)
    parser.add_argument("--workers", type=int, default=2, help="ocigate's --workers")
    parser.add_argument("--repeat", type=int, default=1, help="rounds (cases interleaved)")
    parser.add_argument("--cases", default=",".join(CASES), help=f"a subset of {','.join(CASES)}")
    parser.add_argument(
        "--sse",
        choices=["none", "aws:kms"],
        default="none",
        help="server-side encryption of both (Distribution 2.8.2 fails uploads on RGW with aws:kms)",
    )
    parser.add_argument("--memstore-gib", type=int, default=3)
    parser.add_argument("--time-limit", type=float, default=1800, help="seconds a storm may take")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, nodes.json)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    cases = [case for case in args.cases.split(",") if case]
    if (
        "distribution" in cases
        and subprocess.run(["which", "docker-registry"], capture_output=True).returncode
    ):
        raise SystemExit("docker-registry is missing: apt-get install docker-registry (Distribution 2.8.2)")
    tmp = Path(tempfile.mkdtemp(prefix="node-storm-"))
    rgw = Rgw(tmp, args.memstore_gib)
    results: dict[str, list[dict[str, Any]]] = {case: [] for case in cases}
    started = time.monotonic()
    print(f"starting Ceph in {tmp} ...", flush=True)
    try:
        rgw.up()
        print(f"Ceph up in {time.monotonic() - started:.0f} s", flush=True)
        for round_ in range(args.repeat):
            shift = round_ % len(cases)
            for case in cases[shift:] + cases[:shift]:
                result = one_storm(rgw, args, tmp, case, round_)
                results[case].append(result)
                args.keep = args.keep or result["exact"] != result["nodes"]  # keep what explains it
                print(row(case, result), flush=True)
    except BaseException:
        args.keep = True
        raise
    finally:
        rgw.cluster.down()
        if args.keep:
            print(f"logs and each storm's nodes.json kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(summary(results), flush=True)
    if args.json:
        args.json.write_text(
            json.dumps({"settings": vars(args) | {"json": str(args.json)}, **results}, indent=1)
        )
    exact = all(r["exact"] == r["nodes"] for runs in results.values() for r in runs)
    return 0 if exact else 1


def summary(results: dict[str, list[dict[str, Any]]]) -> str:
    """Medians (and ranges) per case, and the storm time of each case against Distribution's."""
    lines = ["", "medians over rounds [min-max]:"]
    seconds = {case: statistics.median(r["seconds"] for r in runs) for case, runs in results.items() if runs}
    for case, runs in results.items():
        if not runs:
            continue
        times = [r["seconds"] for r in runs]
        sent = [r["s3_bytes"] / r["image_bytes"] for r in runs]
        line = (
            f"{case:>14}: storm {seconds[case]:.1f} s [{min(times):.1f}-{max(times):.1f}], "
            f"p50 {statistics.median(r['p50'] or 0 for r in runs):.1f} s, "
            f"p99 {statistics.median(r['p99'] or 0 for r in runs):.1f} s, "
            f"S3 {statistics.median(sent):.2f}x the image [{min(sent):.2f}-{max(sent):.2f}], "
            f"peak RSS {statistics.median(r['rss']['sum_mb'] for r in runs):.0f} MB"
        )
        if "distribution" in seconds and case != "distribution":
            line += f"; storm time {seconds[case] / seconds['distribution']:.2f}x Distribution's"
        lines.append(line)
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
