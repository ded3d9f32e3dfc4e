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
from ocigate.storage.registries import Registries

from .settings import Settings

log = logging.getLogger("ocigate.auth")


def credential_store(registries: Registries) -> CredentialStore:
    return CredentialStore(registries.metadata.engine)  # the same database


def keys_dir(settings: Settings) -> Path:
    return settings.auth.keys_dir or settings.storage.data_dir / "keys"


async def prepare_access(settings: Settings, registries: Registries) -> None:
    """Once per deployment start (before workers fork): signing key and first user."""
    if settings.auth.mode == "none":
        return
    KeyRing.load(keys_dir(settings))  # generates the first key if there is none
    password = settings.auth.admin_password
    _, generated = await bootstrap(
        credential_store(registries), password.get_secret_value() if password else None
    )
    if generated is not None:
        # printed once: only its hash is stored
        log.warning("created account user 'admin' with password: %s", generated)


async def open_authenticator(settings: Settings, registries: Registries) -> Authenticator | None:
    auth = settings.auth
    if auth.mode == "none":
        log.warning(
            "!!! OCIGATE_AUTH=none: authentication is OFF, anyone who reaches this port can push, "
            "pull and delete. Use only for local experiments. !!!"
        )
        return None
    bearer = BearerTokens(KeyRing.load(keys_dir(settings), create=False), ttl_seconds=auth.token_ttl)
    threads = auth.password_threads or default_threads(settings.server.workers)
    throttle = LoginThrottle(auth.login_failures, auth.login_window, settings.redis.shared_url)
    if throttle.enabled:
        log.info(
            "failed logins: %d per %g s per username and address (then 429), password checks on %d thread(s)",
            auth.login_failures,
            auth.login_window,
            threads,
        )
    else:
        log.warning("failed logins are not throttled (OCIGATE_LOGIN_FAILURES=0)")
    return Authenticator(
        credential_store(registries),
        bearer,
        one_time_window_seconds=auth.one_time_window,
        checker=PasswordChecker(threads),
        throttle=throttle,
    )
