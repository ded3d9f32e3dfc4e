"""How clients authenticate: the auth section of the settings (see storage/config.py for how a
section is declared)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class AuthConfig(BaseModel):
    # `mode` is set as `auth` (a field's alias is its whole flat name)
    model_config = ConfigDict(
        frozen=True, extra="forbid", hide_input_in_errors=True, validate_by_name=True, validate_by_alias=True
    )
    env_prefix: ClassVar[str] = ""

    mode: Literal["token", "none"] = Field(
        "token",
        alias="auth",
        description="token: Docker token auth and Basic, nothing anonymous; none: no auth, for experiments",
    )
    admin_password: SecretStr | None = Field(
        None, description="password of the account user `admin` created on first start (generated if unset)"
    )
    keys_dir: Path | None = Field(
        None,
        description="directory of the ES256 token signing keys, shared by replicas (default <data-dir>/keys)",
    )
    token_ttl: int = Field(300, ge=1, description="lifetime of bearer tokens, seconds")
    one_time_window: int = Field(
        3600,
        ge=0,
        description="seconds a one-time token stays usable after its first use (until its first tag)",
    )
    login_failures: int = Field(
        10,
        ge=0,
        description="failed logins per window for a username from an address (5x for all usernames); "
        "more get 429 unchecked (0: off)",
    )
    login_window: float = Field(
        300.0,
        gt=0,
        description="seconds over which failed logins are counted (then one more per window / failures)",
    )
    password_threads: int = Field(
        0, ge=0, description="threads that compute password hashes (0: half the CPUs, shared among workers)"
    )
