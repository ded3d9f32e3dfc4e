"""Settings: one tree of typed sections, each setting declared once, on its field.

Every leaf is an environment variable `OCIGATE_*` with a matching flag (flags win), parsed and
validated once at start (settings_flat.py). The subsystems declare their own sections (storage,
auth, limits, proxies) and receive them; this module adds the gateway's and puts the tree
together. `ocigate serve --help` and the README's settings table
(`python -m ocigate.gateway.settings`) are generated from it.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from ocigate.auth.config import AuthConfig
from ocigate.limiter.config import LimitConfig, ProxyConfig
from ocigate.storage.cache_redis import check_redis_url
from ocigate.storage.config import StorageConfig

from .settings_flat import SettingsError, add_flags, leaves_of, parse, raw_values, table

SECTION = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


class ServerConfig(BaseModel):
    model_config = SECTION
    env_prefix: ClassVar[str] = ""

    listen: str = Field("0.0.0.0:5000", description="address to listen on, host:port")
    domain: str | None = Field(
        None, description="registries are served at <name>.<domain>; other hosts get the default registry"
    )
    log_level: Annotated[Literal["debug", "info", "warning", "error"], BeforeValidator(str.lower)] = Field(
        "info", description="what is logged"
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="log lines as plain text, or as one JSON object each (for log collectors)"
    )
    access_log: bool = Field(False, description="log every request (costs throughput)")
    metrics: bool = Field(
        True,
        description="count every request by route, status, duration and bytes for /metrics (on/off); "
        "the other figures are always there",
    )
    metrics_usage_interval: float = Field(
        60.0,
        ge=0,
        description="seconds between two sums of the storage usage for /metrics (a scan of the blob "
        "links, so not at every scrape; per process)",
    )
    workers: int = Field(
        1,
        ge=1,
        description="processes sharing the port (SO_REUSEPORT); without Redis each enforces 1/N "
        "of the limits",
    )

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        _, colon, port = value.rpartition(":")
        if not colon or not port.isdigit() or int(port) > 65535:
            raise ValueError("must be host:port, e.g. 0.0.0.0:5000 or [::]:5000")
        return value

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]") or "0.0.0.0"

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


class HttpConfig(BaseModel):
    """How long clients may take (0: no limit)."""

    model_config = SECTION
    env_prefix: ClassVar[str] = ""

    header_timeout: float = Field(
        10.0,
        ge=0,
        description="seconds from a request's first byte to its last header; then the connection is closed",
    )
    body_timeout: float = Field(
        60.0,
        ge=0,
        description="seconds a request body may send nothing before the request fails (408); not a total",
    )
    keepalive_timeout: float = Field(
        30.0, ge=0, description="seconds an idle connection is kept open between requests"
    )


class TlsConfig(BaseModel):
    """HTTPS on the listener (gateway/tls.py); unset: plain HTTP, e.g. behind a TLS proxy."""

    model_config = SECTION
    env_prefix: ClassVar[str] = "tls_"

    cert: Path | None = Field(
        None,
        description="PEM certificate (chain allowed, leaf first) served over TLS 1.2/1.3; reloaded "
        "when the file changes or on SIGHUP",
    )
    key: Path | None = Field(None, description="PEM private key of the certificate")

    @model_validator(mode="after")
    def _both_or_neither(self) -> TlsConfig:
        if (self.cert is None) != (self.key is None):
            raise ValueError("`cert` and `key` go together: set both for HTTPS, or neither")
        return self

    @property
    def enabled(self) -> bool:
        return self.cert is not None


class DrainConfig(BaseModel):
    """SIGTERM: stop taking work without failing what was taken (gateway/drain.py)."""

    model_config = SECTION
    env_prefix: ClassVar[str] = "drain_"

    delay: float = Field(
        5.0,
        ge=0,
        description="seconds between SIGTERM (/readyz answers 503 at once) and closing the listener, "
        "for load balancers to notice",
    )
    timeout: float = Field(
        30.0, ge=0, description="seconds requests in flight then get to finish before they are cut"
    )


class RedisConfig(BaseModel):
    model_config = SECTION
    env_prefix: ClassVar[str] = "redis_"

    url: SecretStr | None = Field(
        None,
        description="redis://host:port/db shared by replicas for the manifest cache, the limiter "
        "and the login throttle",
    )

    @field_validator("url")
    @classmethod
    def _redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_redis_url(value.get_secret_value())
        return value

    @property
    def shared_url(self) -> str | None:
        """The URL itself (it may hold a password), None without Redis."""
        return None if self.url is None else self.url.get_secret_value()


class Settings(BaseModel):
    model_config = SECTION

    # sections are frozen, so one default instance can serve every tree
    server: ServerConfig = ServerConfig()
    http: HttpConfig = HttpConfig()
    tls: TlsConfig = TlsConfig()
    drain: DrainConfig = DrainConfig()
    storage: StorageConfig = StorageConfig()
    redis: RedisConfig = RedisConfig()
    auth: AuthConfig = AuthConfig()
    limits: LimitConfig = LimitConfig()
    proxies: ProxyConfig = ProxyConfig()


LEAVES = leaves_of(Settings)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_flags(parser, LEAVES)


def load_settings(
    arguments: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Flags win over environment variables, which win over defaults. Settings that cannot work
    end the process with one line per problem."""
    values = raw_values(LEAVES, arguments, os.environ if environ is None else environ)
    try:
        return parse(Settings, LEAVES, values)
    except SettingsError as exc:
        raise SystemExit("\n".join(f"ocigate: {line}" for line in str(exc).splitlines())) from None


def settings_table() -> str:
    return table(LEAVES)


if __name__ == "__main__":
    print(settings_table(), end="")
