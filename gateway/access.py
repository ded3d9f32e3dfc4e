"""Setting up authentication at start: keys, the default account and its `admin` user."""

from __future__ import annotations

import logging
from pathlib import Path

from ocigate.auth.admin import bootstrap
from ocigate.auth.jwts import BearerTokens
from ocigate.auth.keys import KeyRing
from ocigate.auth.passwords import PasswordChecker, default_threads
from ocigate.auth.service import Authenticator
from ocigate.auth.store import CredentialStore
from ocigate.auth.throttle import LoginThrottle
from ocigate.storage.metadata.engine import SqlEngine
from ocigate.storage.metadata.sql import SqlMetadataStore
from ocigate.storage.registries import Registries

from .settings import Settings

log = logging.getLogger("ocigate.auth")


def sql_engine(registries: Registries) -> SqlEngine:
    """The engine of the metadata store, where credentials and console sessions live too."""
    metadata = registries.metadata
    if not isinstance(metadata, SqlMetadataStore):
        raise TypeError("credentials live in the SQL metadata store")
    return metadata.engine


def credential_store(registries: Registries) -> CredentialStore:
    return CredentialStore(sql_engine(registries))


def keys_dir(settings: Settings) -> Path:
    return settings.keys_dir or settings.data_dir / "keys"


async def prepare_access(settings: Settings, registries: Registries) -> None:
    """Once per deployment start (before workers fork): signing key and first user."""
    if settings.auth == "none":
        return
    KeyRing.load(keys_dir(settings))  # generates the first key if there is none
    _, generated = await bootstrap(credential_store(registries), settings.admin_password)
    if generated is not None:
        # printed once: only its hash is stored
        log.warning("created account user 'admin' with password: %s", generated)


async def open_authenticator(settings: Settings, registries: Registries) -> Authenticator | None:
    if settings.auth == "none":
        log.warning(
            "!!! OCIGATE_AUTH=none: authentication is OFF, anyone who reaches this port can push, "
            "pull and delete. Use only for local experiments. !!!"
        )
        return None
    if settings.auth != "token":
        raise SystemExit(f"ocigate: OCIGATE_AUTH must be token or none, not {settings.auth!r}")
    bearer = BearerTokens(KeyRing.load(keys_dir(settings), create=False), ttl_seconds=settings.token_ttl)
    threads = settings.password_threads or default_threads(settings.workers)
    throttle = LoginThrottle(settings.login_failures, settings.login_window, settings.redis_url)
    if throttle.enabled:
        log.info(
            "failed logins: %d per %g s per username and address (then 429), password checks on %d thread(s)",
            settings.login_failures,
            settings.login_window,
            threads,
        )
    else:
        log.warning("failed logins are not throttled (OCIGATE_LOGIN_FAILURES=0)")
    return Authenticator(
        credential_store(registries),
        bearer,
        one_time_window_seconds=settings.one_time_window,
        checker=PasswordChecker(threads),
        throttle=throttle,
    )
