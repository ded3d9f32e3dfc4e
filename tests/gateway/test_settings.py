"""The settings tree: the names users set stay, flags win, and a value that cannot work stops the
start with a line naming the variable and what it allows (never a secret's value)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from ocigate.gateway.cli import main
from ocigate.gateway.settings import LEAVES, Settings, add_arguments, load_settings
from tests.servers import ocigate

ROOT = Path(__file__).resolve().parents[2]
# every name deployments use today (deploy/ and the README too): none may change
NAMES = [
    "LISTEN",
    "DATA_DIR",
    "DOMAIN",
    "LOG_LEVEL",
    "ACCESS_LOG",
    "LOG_FORMAT",
    "METRICS",
    "METRICS_USAGE_INTERVAL",
    "METADATA_URL",
    "BLOB_STORE",
    "ENCRYPTION_KEY",
    "ENCRYPTION_KEY_FILE",
    "S3_ENDPOINT_URL",
    "S3_BUCKET",
    "S3_REGION",
    "S3_SSE",
    "S3_SSE_KMS_KEY_ID",
    "S3_SSE_C_KEY",
    "S3_SSE_C_KEY_FILE",
    "S3_ADDRESSING_STYLE",
    "S3_PART_SIZE",
    "S3_POOL_SIZE",
    "S3_REDIRECT",
    "S3_TIMEOUT",
    "CACHE_DIR",
    "CACHE_BYTES",
    "CACHE_SPILL_BYTES",
    "CACHE_LINGER_BYTES",
    "UPLOAD_TTL",
    "UPLOAD_PRESSURE_TTL",
    "GC_GRACE",
    "MIN_FREE_SPACE",
    "MAX_BLOB_SIZE",
    "HEADER_TIMEOUT",
    "BODY_TIMEOUT",
    "KEEPALIVE_TIMEOUT",
    "TLS_CERT",
    "TLS_KEY",
    "DRAIN_DELAY",
    "DRAIN_TIMEOUT",
    "REDIS_URL",
    "AUTH",
    "ADMIN_PASSWORD",
    "KEYS_DIR",
    "TOKEN_TTL",
    "ONE_TIME_WINDOW",
    "SESSION_TTL",
    "LOGIN_FAILURES",
    "LOGIN_WINDOW",
    "PASSWORD_THREADS",
    "LIMIT_CONNECTIONS",
    "LIMIT_RPS",
    "LIMIT_BURST",
    "LIMIT_IPV6_PREFIX",
    "LIMIT_LEASE_SECONDS",
    "TRUSTED_PROXIES",
    "PROXY_PROTOCOL",
    "WORKERS",
]
KEY = "c2VjcmV0LWtleS1vZi0zMi1ieXRlcy0tLS0tLS0tLS0="  # base64 of 32 bytes


def refused(environ: dict[str, str]) -> str:
    with pytest.raises(SystemExit) as stopped:
        load_settings(environ=environ)
    return str(stopped.value.code)


def test_every_name_and_flag_stays() -> None:
    assert sorted(leaf.env for leaf in LEAVES) == sorted(f"OCIGATE_{name}" for name in NAMES)
    assert all(
        leaf.flag == "--" + leaf.env.removeprefix("OCIGATE_").lower().replace("_", "-") for leaf in LEAVES
    )
    assert all(leaf.info.description for leaf in LEAVES)


def test_serve_help_shows_every_setting_with_its_variable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert all(leaf.flag in text and f"env {leaf.env}," in text for leaf in LEAVES)
    assert "one of: none, AES256, aws:kms, sse-c" in text


def test_flags_win_over_the_environment_which_wins_over_defaults() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    arguments = parser.parse_args(["--s3-sse", "AES256", "--limit-burst", "7"])
    environ = {"OCIGATE_S3_SSE": "aws:kms", "OCIGATE_LIMIT_RPS": "5", "OCIGATE_DOMAIN": ""}
    settings = load_settings(arguments, environ)
    assert settings.storage.s3.sse == "AES256"
    assert (settings.limits.rps, settings.limits.burst, settings.limits.connections) == (5.0, 7, 100)
    assert settings.server.domain is None  # empty is unset
    assert load_settings(environ={}) == Settings()


def test_values_are_typed_where_they_are_used() -> None:
    settings = load_settings(
        environ={
            "OCIGATE_LISTEN": "[::1]:5001",
            "OCIGATE_LOG_LEVEL": "WARNING",
            "OCIGATE_S3_REDIRECT": "yes",
            "OCIGATE_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7",
            "OCIGATE_AUTH": "none",
            "OCIGATE_UPLOAD_TTL": "60",
            "OCIGATE_DATA_DIR": "/srv/ocigate",
        }
    )
    assert (settings.server.host, settings.server.port, settings.server.log_level) == ("::1", 5001, "warning")
    assert settings.storage.s3.redirect is True
    assert [str(network) for network in settings.proxies.trusted_proxies] == ["10.0.0.0/8", "192.168.1.7/32"]
    assert settings.auth.mode == "none"
    assert settings.storage.uploads.ttl == 60
    assert settings.storage.data_dir == Path("/srv/ocigate")


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"OCIGATE_S3_SSE": "kms"}, "OCIGATE_S3_SSE must be one of none, AES256, aws:kms, sse-c (got 'kms')"),
        ({"OCIGATE_AUTH": "basic"}, "OCIGATE_AUTH must be one of token, none (got 'basic')"),
        ({"OCIGATE_LIMIT_RPS": "fast"}, "OCIGATE_LIMIT_RPS must be a number (got 'fast')"),
        ({"OCIGATE_WORKERS": "0"}, "OCIGATE_WORKERS must be at least 1 (got '0')"),
        ({"OCIGATE_LIMIT_IPV6_PREFIX": "129"}, "OCIGATE_LIMIT_IPV6_PREFIX must be at most 128 (got '129')"),
        ({"OCIGATE_ACCESS_LOG": "maybe"}, "OCIGATE_ACCESS_LOG must be true or false"),
        ({"OCIGATE_LISTEN": "5000"}, "OCIGATE_LISTEN must be host:port"),
        ({"OCIGATE_S3_PART_SIZE": "1048576"}, "OCIGATE_S3_PART_SIZE must be between 5 MiB and 5 GiB"),
        ({"OCIGATE_TRUSTED_PROXIES": "10.0.0.0/33"}, "OCIGATE_TRUSTED_PROXIES must be addresses or CIDRs"),
        (
            {"OCIGATE_PROXY_PROTOCOL": "on"},
            "OCIGATE_PROXY_PROTOCOL is on but OCIGATE_TRUSTED_PROXIES is empty",
        ),
        (
            {"OCIGATE_S3_SSE": "sse-c"},
            "OCIGATE_S3_SSE=sse-c needs OCIGATE_S3_SSE_C_KEY or OCIGATE_S3_SSE_C_KEY_FILE",
        ),
        (
            {"OCIGATE_S3_SSE": "sse-c", "OCIGATE_S3_SSE_C_KEY": KEY, "OCIGATE_S3_REDIRECT": "true"},
            "OCIGATE_S3_REDIRECT cannot work with OCIGATE_S3_SSE=sse-c",
        ),
        (
            {"OCIGATE_ENCRYPTION_KEY": KEY, "OCIGATE_ENCRYPTION_KEY_FILE": "/etc/key"},
            "set either OCIGATE_ENCRYPTION_KEY or OCIGATE_ENCRYPTION_KEY_FILE, not both",
        ),
    ],
)
def test_a_value_that_cannot_work_names_its_variable(environ: dict[str, str], message: str) -> None:
    assert refused(environ).startswith(f"ocigate: {message}")


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("OCIGATE_ENCRYPTION_KEY", "hunter2-not-base64"),
        ("OCIGATE_S3_SSE_C_KEY", "aHVudGVyMg=="),
        ("OCIGATE_METADATA_URL", "mysql://app:hunter2@db/registry"),
        ("OCIGATE_REDIS_URL", "http://:hunter2@cache:6379/0"),
    ],
)
def test_a_refused_secret_is_never_shown(name: str, secret: str) -> None:
    message = refused({name: secret})
    assert message.startswith(f"ocigate: {name} must be")
    assert "hunter2" not in message
    assert "aHVudGVyMg" not in message


def test_secrets_stay_out_of_reprs() -> None:
    secrets = {
        "OCIGATE_ADMIN_PASSWORD": "hunter2-admin",
        "OCIGATE_METADATA_URL": "postgresql://app:hunter2@db/registry",
        "OCIGATE_REDIS_URL": "redis://:hunter2@cache:6379/0",
        "OCIGATE_ENCRYPTION_KEY": KEY,
    }
    settings = load_settings(environ=secrets)
    assert "hunter2" not in repr(settings)
    assert KEY not in repr(settings)
    assert settings.redis.shared_url == "redis://:hunter2@cache:6379/0"


def test_every_problem_is_reported_at_once() -> None:
    lines = refused(
        {"OCIGATE_S3_SSE": "kms", "OCIGATE_TOKEN_TTL": "soon", "OCIGATE_WORKERS": "-1"}
    ).splitlines()
    assert [line.split()[1] for line in lines] == ["OCIGATE_WORKERS", "OCIGATE_S3_SSE", "OCIGATE_TOKEN_TTL"]


def test_a_command_with_a_bad_setting_stops_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"OCIGATE_BLOB_STORE must be one of filesystem, s3 \(got 'S3 '\)"):
        ocigate("registry", "list", data_dir=tmp_path / "data", env={"OCIGATE_BLOB_STORE": "S3 "})
    assert not (tmp_path / "data").exists()  # refused before any store was opened


def test_storage_auth_and_limiter_know_nothing_of_the_gateway() -> None:
    """Dependencies point downward (gateway → auth, limiter, storage), and the variables' names
    are the gateway's: the settings layer puts them into messages."""
    offending = [
        f"{path.relative_to(ROOT)}: {match}"
        for folder in ("storage", "auth", "limiter")
        for path in (ROOT / folder).rglob("*.py")
        for match in re.findall(r"OCIGATE_\w+|from \.\.+gateway\b.*|ocigate\.gateway\b.*", path.read_text())
    ]
    assert offending == []
