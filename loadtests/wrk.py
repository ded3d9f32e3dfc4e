"""What the overhead benchmarks measure with: wrk's rate against a URL, and a process's CPU
(a cost that other load on the machine barely moves)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """User + system CPU so far of a process and its children (the workers, while they live)."""
    total = 0.0
    for process in [pid, *_children(pid)]:
        fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def wrk(url: str, duration: float, connections: int, cpu: int | None) -> tuple[float, int]:
    pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
    result = subprocess.run(
        [*pin, "wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "-H", "Accept: */*", url],
        capture_output=True,
        text=True,
        timeout=duration + 30,
        check=True,
    )
    rate = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    count = re.search(r"(\d+) requests in", result.stdout)
    if rate is None or count is None or "Non-2xx" in result.stdout:
        raise RuntimeError(f"wrk: {result.stdout}")
    return float(rate.group(1)), int(count.group(1))
