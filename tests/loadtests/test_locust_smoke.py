"""A short, bounded run of the Locust suite: the same `loadtests/run` the full runs use."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(out: Path, *args: str) -> dict[str, object]:
    result = subprocess.run(
        [str(ROOT / "loadtests" / "run"), "--out", str(out), "--users", "4", "--time", "3", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (out / "summary.txt").read_text().rstrip().endswith("PASSED")
    return json.loads((out / "summary.json").read_text())


def test_limits_and_connections_hold_under_locust(tmp_path: Path) -> None:
    """Limits set by the env vars the gateway reads; the report shows them."""
    summary = _run(
        tmp_path,
        "--scenario",
        "limits",
        "--rps",
        "20",
        "--burst",
        "5",
    )
    limits = summary["limits"]
    assert isinstance(limits, dict)
    assert limits["bad_429"] == 0
    assert limits["limited"] > 0
    assert 0.95 * limits["bound"] <= limits["admitted"] <= limits["bound"]
    assert (tmp_path / "limits" / "report.html").exists()
    assert (tmp_path / "limits" / "locust_stats.csv").exists()


def test_connection_probe(tmp_path: Path) -> None:
    summary = _run(
        tmp_path, "--scenario", "connections", "--limit-connections", "20", "--connections-probe", "30"
    )
    assert summary["connections"] == {"opened": 30, "served": 20, "refused": 10}


def test_throughput_run_pulls_and_pushes(tmp_path: Path) -> None:
    summary = _run(tmp_path, "--scenario", "throughput")
    throughput = summary["throughput"]
    assert isinstance(throughput, dict)
    assert throughput["requests_per_s"] > 0
    statuses = throughput["statuses"]
    assert statuses.get("200", 0) > 0
    assert statuses.get("201", 0) > 0  # pushes completed
