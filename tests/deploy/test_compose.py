"""deploy/compose.yaml as docker-compose (Debian's v1.29) reads it, and what it must hold: two
hardened replicas sharing PostgreSQL, Redis, S3 and the signing keys behind haproxy."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose.yaml"
HAPROXY = ROOT / "deploy" / "compose" / "haproxy.cfg"
SECRETS = {
    "POSTGRES_PASSWORD": "pg-secret",
    "S3_SECRET_KEY": "s3-secret",
    "OCIGATE_ADMIN_PASSWORD": "admin-secret-123",
}
REPLICAS = ("ocigate-1", "ocigate-2")


def compose_config(environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    if shutil.which("docker-compose") is None:
        pytest.fail("docker-compose is missing: run `bash tests/e2e/install-clients.sh` as root")
    clean = {name: value for name, value in os.environ.items() if name not in SECRETS}
    return subprocess.run(
        ["docker-compose", "--file", COMPOSE, "config"],
        env={**clean, **environment},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    result = compose_config(SECRETS)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_no_secret_has_a_default(missing: str) -> None:
    result = compose_config({name: value for name, value in SECRETS.items() if name != missing})
    assert result.returncode != 0
    assert f"set {missing}" in result.stderr


def test_two_replicas_of_one_hardened_image(config: dict[str, Any]) -> None:
    services = config["services"]
    assert {services[name]["image"] for name in REPLICAS} == {"ocigate:0.1.0"}
    for name in REPLICAS:
        replica = services[name]
        assert replica["read_only"] is True
        assert "/tmp" in replica["tmpfs"]
        assert replica["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in replica["security_opt"]
        assert replica["healthcheck"]["test"] == ["CMD", "ocigate", "healthcheck"]
    assert services["ocigate-1"]["build"]["dockerfile"] == "deploy/image/Dockerfile"
    # the first replica creates the schema, the signing key and the admin user alone
    assert services["ocigate-2"]["depends_on"]["ocigate-1"]["condition"] == "service_healthy"


def test_replicas_share_metadata_blobs_limits_and_signing_keys(config: dict[str, Any]) -> None:
    services = config["services"]
    env = services["ocigate-1"]["environment"]
    assert services["ocigate-2"]["environment"] == env
    password = SECRETS["POSTGRES_PASSWORD"]
    assert env["OCIGATE_METADATA_URL"] == f"postgresql://ocigate:{password}@postgres:5432/ocigate"
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == password
    assert env["OCIGATE_REDIS_URL"].startswith("redis://redis:")
    assert env["OCIGATE_BLOB_STORE"] == "s3"
    assert env["OCIGATE_S3_ENDPOINT_URL"] == "http://s3:8333"
    s3 = services["s3"]["environment"]
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == (
        s3["S3_ACCESS_KEY"],
        s3["S3_SECRET_KEY"],
    )
    # keys: the data dir (default keys dir <data-dir>/keys, the image's /data) is one volume
    assert "OCIGATE_KEYS_DIR" not in env
    mounts = [
        {volume for volume in services[name]["volumes"] if volume.endswith(":/data:rw")} for name in REPLICAS
    ]
    assert mounts[0] == mounts[1] != set()


def test_stopping_waits_for_the_drain(config: dict[str, Any]) -> None:
    for name in REPLICAS:
        replica = config["services"][name]
        env = replica["environment"]
        grace = re.fullmatch(r"(\d+)s", replica["stop_grace_period"])
        assert grace is not None
        assert int(grace.group(1)) >= int(env["OCIGATE_DRAIN_DELAY"]) + int(env["OCIGATE_DRAIN_TIMEOUT"])


def test_haproxy_balances_both_replicas_with_proxy_protocol(config: dict[str, Any]) -> None:
    lb = config["services"]["lb"]
    assert {
        name for name, dependency in lb["depends_on"].items() if dependency["condition"] == "service_healthy"
    } == set(REPLICAS)
    assert f"{HAPROXY}:/usr/local/etc/haproxy/haproxy.cfg:ro" in lb["volumes"]
    assert [port["target"] for port in lb["ports"]] == [5000]
    haproxy = HAPROXY.read_text()
    servers = dict(re.findall(r"^\s*server (\S+) (\S+)", haproxy, re.M))
    assert servers == {name: f"{name}:5000" for name in REPLICAS}
    defaults = re.search(r"^\s*default-server (.*)$", haproxy, re.M)
    assert defaults is not None
    assert {"check", "send-proxy-v2", "check-send-proxy"} <= set(defaults.group(1).split())
    assert "http-check send meth GET uri /readyz" in haproxy
    for name in REPLICAS:
        environment = config["services"][name]["environment"]
        assert environment["OCIGATE_PROXY_PROTOCOL"] == "true"
        # PROXY headers only from haproxy (and the replica's own health check over loopback)
        trusted = set(environment["OCIGATE_TRUSTED_PROXIES"].replace(",", " ").split())
        assert trusted == {f"{lb['networks']['default']['ipv4_address']}/32", "127.0.0.1/32"}
