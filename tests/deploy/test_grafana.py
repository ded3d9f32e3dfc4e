"""deploy/grafana/ocigate.json: valid JSON in Grafana's dashboard model, every query valid
PromQL (promtool, as recording rules) naming only metrics a running gateway exports (over S3,
so that the S3 figures are there too), and the panels the issue asks for."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.servers import Gateway
from tests.services.ceph import S3Service, new_bucket

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "ocigate.json"
METRIC = re.compile(r"\bocigate_[a-z0-9_]+\b")
# Grafana's variables, as Grafana would fill them in
VARIABLES = {"$__rate_interval": "1m", "$instance": ".*"}


def queries(dashboard: dict[str, Any]) -> list[str]:
    found = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    found += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    return found


@pytest.fixture(scope="module")
def exported(moto_s3: S3Service, tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The metric names (series and families) a gateway over S3 exports."""
    gateway = Gateway(
        tmp_path_factory.mktemp("grafana") / "data", env=moto_s3.settings("AES256", new_bucket())
    ).start()
    try:
        assert requests.get(f"{gateway.url}/v2/", timeout=10).status_code == 401  # a request counted
        text = requests.get(f"{gateway.url}/metrics", timeout=30).text
    finally:
        gateway.stop()
    names = set()
    for family in text_string_to_metric_families(text):  # declared (HELP, TYPE) even if no series yet
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}.get(family.type, [""])
        names.update(family.name + suffix for suffix in suffixes)
    return names


def test_the_dashboard_is_valid_and_has_what_an_operator_watches() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "ocigate"
    assert isinstance(dashboard["schemaVersion"], int)
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        assert {"x", "y", "w", "h"} <= panel["gridPos"].keys()
        assert panel["datasource"]["uid"] == "${datasource}"
    text = " ".join(queries(dashboard))
    for wanted in (
        "ocigate_http_requests_total",  # RPS
        "histogram_quantile(0.99",  # p99
        "ocigate_limiter_requests_limited_total",  # 429s
        "ocigate_http_sent_bytes_total",  # bytes
        'ocigate_cache_lookups_total{result="hit"',  # cache hit ratio
        "ocigate_s3_errors_total",  # S3 errors
    ):
        assert wanted in text, wanted


def test_every_query_is_promql_over_metrics_that_exist(exported: set[str], tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = []
    for query in queries(dashboard):
        for variable, value in VARIABLES.items():
            query = query.replace(variable, value)
        if query.startswith("label_values("):  # Grafana's, not PromQL: check its metric only
            assert METRIC.findall(query), query
        else:
            expressions.append(query)
        for name in METRIC.findall(query):
            assert name in exported, f"{name} (in {query}) is not exported"
    rules = tmp_path / "rules.yaml"
    recording = [{"record": f"ocigate:dashboard:{n}", "expr": e} for n, e in enumerate(expressions)]
    rules.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": recording}]}))
    promtool = shutil.which("promtool")
    assert promtool is not None, (
        "promtool is missing: `apt-get install prometheus` (tests/services/install.sh)"
    )
    result = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
