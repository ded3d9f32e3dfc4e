"""Settings: environment variables `OCIGATE_*`, each with a matching command-line flag.

The README's settings table lists the same names; `ocigate serve --help` prints them too.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, fields
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    listen: str = "0.0.0.0:5000"
    data_dir: Path = Path("./data")
    domain: str | None = None
    log_level: str = "info"
    access_log: bool = False

    @property
    def host(self) -> str:
        host, _, _ = self.listen.rpartition(":")
        return host.strip("[]") or "0.0.0.0"

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


_HELP = {
    "listen": "address to listen on, host:port",
    "data_dir": "directory for the embedded default's metadata (SQLite) and blobs",
    "domain": "registries are served at <name>.<domain>; other hosts get the default registry",
    "log_level": "debug, info, warning or error",
    "access_log": "log every request (costs throughput)",
}


def env_name(field_name: str) -> str:
    return "OCIGATE_" + field_name.upper()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for field in fields(Settings):
        flag = "--" + field.name.replace("_", "-")
        parser.add_argument(
            flag,
            dest=field.name,
            default=None,
            help=f"{_HELP[field.name]} (env {env_name(field.name)}, default {field.default})",
        )


def load_settings(
    arguments: argparse.Namespace | None = None, environ: dict[str, str] | None = None
) -> Settings:
    """Flags win over environment variables, which win over defaults."""
    environ = dict(os.environ) if environ is None else environ
    values: dict[str, object] = {}
    for field in fields(Settings):
        raw = getattr(arguments, field.name, None) if arguments is not None else None
        if raw is None:
            raw = environ.get(env_name(field.name))
        if raw is None or raw == "":
            continue
        values[field.name] = _convert(field.name, raw)
    settings = Settings(**values)  # type: ignore[arg-type]
    try:
        settings.port  # noqa: B018 - validate early
    except ValueError:
        raise SystemExit(f"invalid {env_name('listen')}: {settings.listen!r} (expected host:port)") from None
    return settings


def _convert(name: str, raw: str) -> object:
    if name == "data_dir":
        return Path(raw)
    if name == "access_log":
        return raw.lower() in ("1", "true", "yes", "on")
    return raw
