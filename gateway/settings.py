"""Settings: environment variables `OCIGATE_*`, each with a matching command-line flag.

The README's settings table lists the same names; `ocigate serve --help` prints them too.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from ocigate.storage.config import CACHE_BYTES, MAX_BLOB_SIZE, UPLOAD_TTL, StorageConfig


@dataclass(frozen=True)
class Settings:
    listen: str = "0.0.0.0:5000"
    data_dir: Path = Path("./data")
    domain: str | None = None
    log_level: str = "info"
    access_log: bool = False
    metadata_url: str | None = field(default=None, repr=False)  # secret
    blob_store: str = "filesystem"
    encryption_key: str | None = field(default=None, repr=False)  # secret
    encryption_key_file: Path | None = None
    s3_endpoint_url: str | None = None
    s3_bucket: str = "ocigate"
    s3_region: str | None = None
    s3_sse: str = "none"
    s3_sse_kms_key_id: str | None = None
    s3_sse_c_key: str | None = field(default=None, repr=False)  # secret
    s3_sse_c_key_file: Path | None = None
    s3_addressing_style: str = "auto"
    s3_part_size: int = 16 * 1024 * 1024
    s3_pool_size: int = 64
    s3_redirect: bool = False
    s3_timeout: float = 10.0
    cache_dir: Path | None = None
    cache_bytes: int = CACHE_BYTES
    upload_ttl: int = UPLOAD_TTL
    upload_pressure_ttl: int = 3600
    min_free_space: float = 0.05
    max_blob_size: int = MAX_BLOB_SIZE
    header_timeout: float = 10.0
    body_timeout: float = 60.0
    keepalive_timeout: float = 30.0
    redis_url: str | None = None
    auth: str = "token"
    admin_password: str | None = field(default=None, repr=False)  # secret
    keys_dir: Path | None = None
    token_ttl: int = 300
    one_time_window: int = 3600
    login_failures: int = 10
    login_window: float = 300.0
    password_threads: int = 0
    limit_connections: int = 100
    limit_rps: float = 60.0
    limit_burst: int = 0
    limit_ipv6_prefix: int = 64
    limit_lease_seconds: float = 30.0
    trusted_proxies: str | None = None
    proxy_protocol: bool = False
    workers: int = 1

    @property
    def host(self) -> str:
        host, _, _ = self.listen.rpartition(":")
        return host.strip("[]") or "0.0.0.0"

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    def storage(self) -> StorageConfig:
        names = {f.name for f in fields(StorageConfig)}
        return StorageConfig(**{name: getattr(self, name) for name in names})


HELP = {
    "auth": "token (Docker token auth and Basic; nothing anonymous) or none (no auth, for experiments)",
    "admin_password": "password of the account user `admin` created on first start (generated if unset)",
    "keys_dir": "directory of the ES256 token signing keys, shared by replicas (default <data-dir>/keys)",
    "token_ttl": "lifetime of bearer tokens, seconds",
    "one_time_window": "seconds a one-time token stays usable after its first use (until its first tag)",
    "login_failures": "failed logins per window for a username from an address (5x for all usernames); "
    "more get 429 unchecked (0: off)",
    "login_window": "seconds over which failed logins are counted (then one more per window / failures)",
    "password_threads": "threads that compute password hashes (0: half the CPUs, shared among workers)",
    "listen": "address to listen on, host:port",
    "data_dir": "directory of the embedded default's metadata (SQLite), blobs and keys",
    "domain": "registries are served at <name>.<domain>; other hosts get the default registry",
    "log_level": "debug, info, warning or error",
    "access_log": "log every request (costs throughput)",
    "metadata_url": "postgresql://user:pass@host/db for shared metadata; SQLite in the data dir if unset",
    "blob_store": "filesystem (in the data dir, encrypted) or s3",
    "encryption_key": "filesystem blob key, base64 of 32 bytes (generated into the data dir if unset)",
    "encryption_key_file": "file holding the filesystem blob key",
    "s3_endpoint_url": "S3 endpoint, e.g. http://127.0.0.1:7480 (AWS if unset)",
    "s3_bucket": "S3 bucket for blobs",
    "s3_region": "S3 region",
    "s3_sse": "server-side encryption: none, AES256, aws:kms or sse-c",
    "s3_sse_kms_key_id": "KMS key id for aws:kms",
    "s3_sse_c_key": "SSE-C customer key, base64 of 32 bytes",
    "s3_sse_c_key_file": "file holding the SSE-C customer key",
    "s3_addressing_style": "auto, path or virtual",
    "s3_part_size": "multipart part size in bytes (at least 5 MiB); memory per upload is about one part",
    "s3_pool_size": "maximum S3 connections",
    "s3_redirect": "answer blob GETs with a 307 to a presigned URL (not with sse-c)",
    "s3_timeout": "seconds S3 may keep a request waiting for data before it counts as failed (then 503)",
    "cache_dir": "directory of the edge cache of blobs read from S3, encrypted, shared by the workers "
    "(off if unset)",
    "cache_bytes": "most bytes the edge cache holds; least recently used blobs go first",
    "upload_ttl": "seconds an upload session may sit idle before it expires and its staged bytes are deleted",
    "upload_pressure_ttl": "seconds an upload session may sit idle while the disk is short of space",
    "min_free_space": "fraction of the blob disk free below which it is short of space (filesystem store)",
    "max_blob_size": "largest blob accepted, bytes (an S3 store's own limit, 10,000 parts, may be lower)",
    "header_timeout": "seconds from a request's first byte to its last header; then the connection is closed",
    "body_timeout": "seconds a request body may send nothing before the request fails (408); not a total",
    "keepalive_timeout": "seconds an idle connection is kept open between requests",
    "redis_url": "redis://host:port/db shared by replicas for the manifest cache and the limiter",
    "limit_connections": "concurrent connections per client; more are closed at accept time (0: unlimited)",
    "limit_rps": "requests per second per client; more get 429 TOOMANYREQUESTS (0: unlimited)",
    "limit_burst": "requests a client may send at once from idle (0: one second's worth, = limit_rps)",
    "limit_ipv6_prefix": "IPv6 clients are counted per network of this prefix length",
    "limit_lease_seconds": "a dead replica's connection slots are freed after this long (with Redis)",
    "trusted_proxies": "CIDRs of proxies whose X-Forwarded-For / PROXY header names the client",
    "proxy_protocol": "connections start with a PROXY v1/v2 header; only trusted proxies may connect",
    "workers": "processes sharing the port (SO_REUSEPORT); without Redis each enforces 1/N of the limits",
}
_SECRETS = {"encryption_key", "s3_sse_c_key", "metadata_url", "admin_password"}


def env_name(field_name: str) -> str:
    return "OCIGATE_" + field_name.upper()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for setting in fields(Settings):
        flag = "--" + setting.name.replace("_", "-")
        default = "unset" if setting.default is None else setting.default
        parser.add_argument(
            flag,
            dest=setting.name,
            default=None,
            help=f"{HELP[setting.name]} (env {env_name(setting.name)}, default {default})",
        )


def load_settings(
    arguments: argparse.Namespace | None = None, environ: dict[str, str] | None = None
) -> Settings:
    """Flags win over environment variables, which win over defaults."""
    environ = dict(os.environ) if environ is None else environ
    values: dict[str, object] = {}
    for setting in fields(Settings):
        raw = getattr(arguments, setting.name, None) if arguments is not None else None
        if raw is None:
            raw = environ.get(env_name(setting.name))
        if raw is None or raw == "":
            continue
        try:
            values[setting.name] = _convert(setting.default, setting.type, raw)
        except ValueError:
            shown = "(hidden)" if setting.name in _SECRETS else repr(raw)
            raise SystemExit(f"ocigate: invalid {env_name(setting.name)}: {shown}") from None
    settings = Settings(**values)  # type: ignore[arg-type]
    try:
        settings.port  # noqa: B018 - validate early
    except ValueError:
        expected = "expected host:port"
        raise SystemExit(f"ocigate: invalid {env_name('listen')}: {settings.listen!r} ({expected})") from None
    return settings


def _convert(default: object, annotation: object, raw: str) -> object:
    if isinstance(default, bool):
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(raw)
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    if "Path" in str(annotation):
        return Path(raw)
    return raw
