"""A short, bounded run of the Locust suite: the same `loadtests/run` the full runs use."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(out: Path, *args: str, seconds: int = 3, env: dict[str, str] | None = None) -> dict[str, object]:
    command = [str(ROOT / "loadtests" / "run"), "--out", str(out), "--users", "4", "--time", str(seconds)]
    result = subprocess.run(
        [*command, *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120 + seconds,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (out / "summary.txt").read_text().rstrip().endswith("PASSED")
    return json.loads((out / "summary.json").read_text())


def test_limits_hold_under_locust_as_the_env_sets_them(tmp_path: Path) -> None:
    # A burst of one second's worth: a client that a busy machine pauses for a moment still finds
    # its saturation rate when it comes back (GCRA banks no more than the burst).
    env = {"OCIGATE_LIMIT_RPS": "20", "OCIGATE_LIMIT_BURST": "20"}
    summary = _run(tmp_path, "--scenario", "limits", seconds=5, env=env)
    limits = summary["limits"]
    assert isinstance(limits, dict)
    assert limits["rps"] == 20
    assert limits["bad_429"] == 0
    assert limits["limited"] > 0
    assert limits["floor"] <= limits["admitted"] <= limits["bound"]
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
