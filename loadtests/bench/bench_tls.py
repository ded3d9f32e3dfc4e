"""A large blob GET over TLS in the gateway, against plain HTTP and against nginx terminating TLS
in front of the plain gateway, in one run.

    .venv/bin/python loadtests/bench/bench_tls.py [--mib 256] [--repeat 5] [--json out.json]

Starts `ocigate serve` twice on one data dir (filesystem store, so blobs are AES-256-GCM at rest
in every case; auth and limits off): one plain, one with OCIGATE_TLS_CERT/KEY from a private CA
made here; and nginx (Debian's nginx-light: `apt-get install nginx-light`), one worker, TLS 1.2
and 1.3, proxying without buffering to the plain gateway over a kept-alive loopback connection.
Each pass GETs the blob once per way with curl (OpenSSL, TLS 1.3, AES-256-GCM as negotiated),
in rotating order; medians of `--repeat` passes, and the median of the per-pass ratios. Server
CPU seconds per GB (gateway, plus nginx for that way) and curl's tell where the cores go: on a
2-core machine curl, the gateway and nginx share them. nginx reads 256 KiB from the gateway at a
time (`proxy_buffer_size`; with its default of one page it is several times slower). MB = 10^6 bytes.

It also says whether kernel TLS could be used here: Python's `ssl.OP_ENABLE_KTLS` (3.12+) and
the kernel's `tls` upper-layer protocol (/proc/sys/net/ipv4/tcp_available_ulp).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import ssl
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "loadtests"))
sys.path.insert(0, str(REPO_ROOT))

import requests  # noqa: E402
from services import OFF, Gateway, free_port, running, serve_argv  # noqa: E402

from tests.harness.processes import stop, wait_until  # noqa: E402
from tests.harness.tls import PrivateCA  # noqa: E402

WAYS = ("plain", "tls", "nginx")
_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime


def ktls_here() -> dict[str, object]:
    ulp = Path("/proc/sys/net/ipv4/tcp_available_ulp")
    return {
        "python": sys.version.split()[0],
        "ssl.OP_ENABLE_KTLS": hasattr(ssl, "OP_ENABLE_KTLS"),
        "kernel ULPs": ulp.read_text().split() if ulp.exists() else [],
        "openssl": ssl.OPENSSL_VERSION,
    }


def nginx_conf(workdir: Path, port: int, upstream: int, cert: Path, key: Path) -> Path:
    temp = workdir / "nginx-temp"
    temp.mkdir()
    conf = workdir / "nginx.conf"
    conf.write_text(
        f"""worker_processes 1;
daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx.err warn;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {temp}/body; proxy_temp_path {temp}/proxy; fastcgi_temp_path {temp}/fcgi;
  uwsgi_temp_path {temp}/uwsgi; scgi_temp_path {temp}/scgi;
  upstream ocigate {{ server 127.0.0.1:{upstream}; keepalive 4; }}
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_protocols TLSv1.2 TLSv1.3;
    client_max_body_size 0;
    location / {{
      proxy_pass http://ocigate;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_buffering off;
      proxy_buffer_size 256k;  # what it reads from the gateway at a time (default: one page)
      proxy_buffers 4 256k;
      proxy_request_buffering off;
    }}
  }}
}}
"""
    )
    return conf


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def curl(url: str, ca: Path) -> tuple[int, float]:
    out = subprocess.run(
        [
            "curl",
            "-sS",
            "--fail",
            "-o",
            "/dev/null",
            "--cacert",
            str(ca),
            "-w",
            "%{size_download} %{time_total}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout.split()
    return int(out[0]), float(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise SystemExit("nginx is missing: apt-get install nginx-light")

    with running("ocigate-bench-tls-") as services:
        workdir = services.workdir
        ca = PrivateCA(workdir / "ca")
        files = ca.issue(["localhost", "127.0.0.1"], serial=1)
        data_dir = workdir / "data"
        plain = services.gateway("plain", OFF, data_dir=data_dir)
        tls_port = free_port()
        tls_env = {
            **plain.env,
            "OCIGATE_LISTEN": f"127.0.0.1:{tls_port}",
            "OCIGATE_TLS_CERT": str(files.cert),
            "OCIGATE_TLS_KEY": str(files.key),
        }
        tls = Gateway("tls", serve_argv(), tls_env, workdir / "tls.log", port=tls_port)
        services.processes.append(tls.start())
        ready = f"https://localhost:{tls_port}/healthz"
        wait_until(lambda: requests.get(ready, verify=ca.ca_file, timeout=5).ok, 30, "the TLS gateway")

        nginx_port = free_port()
        conf = nginx_conf(workdir, nginx_port, plain.port, files.cert, files.key)
        proxy = subprocess.Popen([nginx, "-c", str(conf), "-p", str(workdir)], stderr=subprocess.DEVNULL)
        try:
            nginx_ready = f"https://localhost:{nginx_port}/healthz"
            wait_until(lambda: requests.get(nginx_ready, verify=ca.ca_file, timeout=5).ok, 30, "nginx")
            workers = [
                int(pid)
                for pid in subprocess.run(
                    ["pgrep", "-P", str(proxy.pid)], capture_output=True, text=True
                ).stdout.split()
            ]

            blob = workdir / "blob"
            with blob.open("wb") as out:
                block = os.urandom(8 << 20)
                for index in range(args.mib // 8):
                    out.write(block[:-8] + index.to_bytes(8, "big"))
            digest = "sha256:" + hashlib.sha256(blob.read_bytes()).hexdigest()
            with blob.open("rb") as body:
                pushed = requests.post(
                    f"{plain.url}/v2/bench/tls/blobs/uploads/",
                    params={"digest": digest},
                    data=body,
                    timeout=600,
                )
            assert pushed.status_code == 201, pushed.text
            path = f"/v2/bench/tls/blobs/{digest}"
            urls = {
                "plain": f"http://127.0.0.1:{plain.port}{path}",
                "tls": f"https://localhost:{tls_port}{path}",
                "nginx": f"https://localhost:{nginx_port}{path}",
            }
            servers = {
                "plain": [plain.popen.pid],  # type: ignore[union-attr]
                "tls": [tls.popen.pid],  # type: ignore[union-attr]
                "nginx": [plain.popen.pid, *workers],  # type: ignore[union-attr]
            }
            speeds: dict[str, list[float]] = {way: [] for way in WAYS}
            cpu: dict[str, list[float]] = {way: [] for way in WAYS}
            client_cpu: dict[str, list[float]] = {way: [] for way in WAYS}
            for way in WAYS:  # warm-up: page cache, TLS sessions, nginx upstream connection
                curl(urls[way], ca.ca_file)
            for index in range(args.repeat):
                order = WAYS[index % 3 :] + WAYS[: index % 3]
                for way in order:
                    before, client_before = sum(cpu_seconds(pid) for pid in servers[way]), children_cpu()
                    size, seconds = curl(urls[way], ca.ca_file)
                    used = sum(cpu_seconds(pid) for pid in servers[way]) - before
                    client_cpu[way].append((children_cpu() - client_before) / (size / 1e9))
                    assert size == args.mib << 20, size
                    speeds[way].append(size / seconds / 1e6)
                    cpu[way].append(used / (size / 1e9))
                time.sleep(0.2)
        finally:
            stop(proxy)  # type: ignore[arg-type]

    result = {
        "mib": args.mib,
        "repeat": args.repeat,
        "MB/s": {way: round(statistics.median(values)) for way, values in speeds.items()},
        "server CPU s/GB": {way: round(statistics.median(values), 2) for way, values in cpu.items()},
        "curl CPU s/GB": {way: round(statistics.median(values), 2) for way, values in client_cpu.items()},
        "tls/plain": round(
            statistics.median(t / p for t, p in zip(speeds["tls"], speeds["plain"], strict=True)), 2
        ),
        "tls/nginx": round(
            statistics.median(t / n for t, n in zip(speeds["tls"], speeds["nginx"], strict=True)), 2
        ),
        "ktls": ktls_here(),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
