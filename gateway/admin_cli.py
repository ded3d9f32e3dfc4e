"""The administrative subcommands of `ocigate` (see cli.py for their arguments)."""

from __future__ import annotations

import argparse
import re
import sys
import time

from ocigate.auth.admin import (
    InvalidRequest,
    change_password,
    create_token,
    create_user,
    parse_cli_scope,
    parse_grants,
)
from ocigate.auth.passwords import new_secret
from ocigate.auth.store import DISABLED, ENABLED, CredentialStore
from ocigate.storage.metadata import RegistryRecord
from ocigate.storage.registries import Registries

from .access import credential_store
from .gc import collect
from .management.registry_models import RegistrySettings
from .settings import Settings

_DURATION = re.compile(r"(\d+)([mhd])")
_IN_EFFECT = "Basic logins, /token and the JWTs and refresh tokens minted before end within seconds"
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}
_REPOSITORY_PAGE = 500


class CommandError(Exception):
    pass


async def run(settings: Settings, arguments: argparse.Namespace) -> int:
    registries = await Registries.open(settings.storage, settings.redis.shared_url)
    try:
        store = credential_store(registries)
        command = _COMMANDS[(arguments.command, getattr(arguments, "action", None))]
        await command(settings, arguments, registries, store)
    except (CommandError, InvalidRequest, ValueError) as exc:
        print(f"ocigate: {exc}", file=sys.stderr)
        return 1
    finally:
        await registries.close()
    return 0


async def _registry_create(
    settings: Settings, a: argparse.Namespace, registries: Registries, store: CredentialStore
) -> None:
    account = await store.ensure_account(a.account)
    try:
        record = await registries.create(a.name, account.id)
    except KeyError:
        raise CommandError(f"registry {a.name!r} already exists") from None
    domain = settings.server.domain
    host = f"{record.name}.{domain}" if domain else "(set OCIGATE_DOMAIN to serve it by name)"
    await store.audit("cli", "registry.create", record.name, None)
    print(f"created registry {record.name} ({record.id}), served at {host}")


async def _registry_delete(
    settings: Settings, a: argparse.Namespace, registries: Registries, store: CredentialStore
) -> None:
    if not await registries.delete(a.name):
        raise CommandError(f"no registry {a.name!r}")
    await store.audit("cli", "registry.delete", a.name, None)
    print(f"deleted registry {a.name}")


async def _registry_list(
    settings: Settings, a: argparse.Namespace, registries: Registries, store: CredentialStore
) -> None:
    """name, id, bytes (each blob once however many of its repositories link it), repositories;
    with --repositories each repository's name, artifacts and bytes under it, indented; last the
    store's blobs and bytes (each blob once for all registries)."""
    views = registries.metadata.views
    records = await registries.metadata.registries.list_registries()
    counts = await views.count_repositories_of([record.id for record in records])
    for record in records:
        used = await views.registry_storage_bytes(record.id)
        print(f"{record.name}\t{record.id}\t{used} bytes\t{counts[record.id]} repositories")
        after = ""
        while a.repositories:
            page = await views.list_repository_usage(record.id, after, _REPOSITORY_PAGE)
            for repository in page:
                print(f"  {repository.name}\t{repository.artifact_count} artifacts\t{repository.size} bytes")
            if len(page) < _REPOSITORY_PAGE:
                break
            after = page[-1].name
    blobs, stored = await views.store_totals()
    print(f"store\t{blobs} blobs\t{stored} bytes (each blob once for all registries)")


async def _registry_update(
    settings: Settings, a: argparse.Namespace, registries: Registries, store: CredentialStore
) -> None:
    record = await registries.metadata.registries.get_registry(a.name)
    if record is None:
        raise CommandError(f"no registry {a.name!r}")
    current = RegistrySettings.stored(record.properties)
    changes: dict[str, object] = {}
    if a.delete_untagged is not None:
        changes["delete_untagged_manifests"] = a.delete_untagged == "on"
    if a.quota is not None:
        if a.quota != "none" and (not a.quota.isdigit() or int(a.quota) < 1):
            raise CommandError("--quota must be a number of bytes (at least 1) or 'none'")
        changes["storage_quota_bytes"] = None if a.quota == "none" else int(a.quota)
    updated = current.model_copy(update=changes)
    await registries.metadata.registries.update_registry(record.id, updated.to_json())
    await store.audit("cli", "registry.update", record.name, updated.model_dump_json())
    print(f"updated registry {record.name}: {updated.to_json()}")


async def _gc(
    settings: Settings, a: argparse.Namespace, registries: Registries, store: CredentialStore
) -> None:
    grace = settings.storage.gc.grace if a.grace is None else a.grace
    if grace < 0:
        raise CommandError("--grace must be 0 or more seconds")
    if a.registry is not None:
        record = await registries.metadata.registries.get_registry(a.registry)
        if record is None:
            raise CommandError(f"no registry {a.registry!r}")
        records = [record]
    else:
        records = await registries.metadata.registries.list_registries()
    for record in records:
        report = await collect(registries, record, grace=grace, dry_run=a.dry_run)
        print(report.summary())
    if not a.dry_run:  # what the gateways' upkeep does periodically, now
        expired = await registries.expire_uploads()
        staged = await registries.reap_orphaned_staging()
        print(f"uploads: expired {expired} idle sessions, deleted the staging of {staged} gone ones")


async def _user_create(
    settings: Settings, a: argparse.Namespace, registries: Registries, store: CredentialStore
) -> None:
    account = await store.ensure_account(a.account)
    password, generated = _password_argument(a)
    try:
        await create_user(store, account, a.username, password)
    except KeyError:
        raise CommandError(f"user {a.username!r} already exists") from None
    await store.audit("cli", "user.create", a.username, None)
    print(f"created user {a.username} in account {account.name}")
    if generated:
        print(f"password (shown once): {password}")


def _password_argument(a: argparse.Namespace) -> tuple[str, bool]:
    """--password, else a line of stdin (not a terminal), else a generated one (True)."""
    password = a.password
    if password is None and not sys.stdin.isatty():
        password = sys.stdin.readline().strip() or None
    if password is None:
        return new_secret(), True
    return password, False


async def _user_password(
    settings: Settings, a: argparse.Namespace, registries: Registries, store: CredentialStore
) -> None:
    password, generated = _password_argument(a)
    if not await change_password(store, a.username, password):
        raise CommandError(f"no user {a.username!r}")
    await store.audit("cli", "user.password", a.username, None)
    print(f"changed the password of {a.username}: {_IN_EFFECT}")
    if generated:
        print(f"password (shown once): {password}")


async def _user_status(
    settings: Settings, a: argparse.Namespace, registries: Registries, store: CredentialStore
) -> None:
    if not await store.set_user_status(a.username, DISABLED if a.action == "disable" else ENABLED):
        raise CommandError(f"no user {a.username!r}")
    await store.audit("cli", f"user.{a.action}", a.username, None)
    effect = _IN_EFFECT if a.action == "disable" else "tokens minted before it was disabled stay dead"
    print(f"{a.action}d user {a.username}: {effect}")


async def _user_delete(
    settings: Settings, a: argparse.Namespace, registries: Registries, store: CredentialStore
) -> None:
    if not await store.delete_user(a.username):
        raise CommandError(f"no user {a.username!r}")
    await store.audit("cli", "user.delete", a.username, None)
    print(f"deleted user {a.username}: {_IN_EFFECT}")


async def _registry(registries: Registries, name: str) -> RegistryRecord:
    record = await registries.metadata.registries.get_registry(name)
    if record is None:
        raise CommandError(f"no registry {name!r}")
    return record


def _expiry_ms(text: str) -> int | None:
    if text == "never":
        return None
    match = _DURATION.fullmatch(text)
    if match is None:
        raise CommandError(f"--expires {text!r}: expected e.g. 90m, 12h, 30d or never")
    return int((time.time() + int(match.group(1)) * _UNIT_SECONDS[match.group(2)]) * 1000)


async def _token_create(
    settings: Settings, a: argparse.Namespace, registries: Registries, store: CredentialStore
) -> None:
    registry = await _registry(registries, a.registry)
    grants = parse_grants([parse_cli_scope(scope) for scope in a.scope])
    try:
        created = await create_token(
            store, registry.id, a.name, grants, _expiry_ms(a.expires), one_time=a.one_time
        )
    except KeyError:
        raise CommandError(f"token {a.name!r} already exists in registry {registry.name}") from None
    await store.audit("cli", "token.create", f"{registry.name}/{a.name}", None)
    host = f"{registry.name}.{settings.server.domain}" if settings.server.domain else "<registry host>"
    kind = "one-time token" if a.one_time else "token"
    print(f"created {kind} {a.name} for registry {registry.name}")
    print(f"password (shown once): {created.password}")
    print(f"docker login {host} -u {a.name} -p {created.password}")


async def _token_list(
    settings: Settings, a: argparse.Namespace, registries: Registries, store: CredentialStore
) -> None:
    registry = await _registry(registries, a.registry)
    for token in await store.list_tokens(registry.id):
        scopes = " ".join(f"{g.pattern}:{','.join(sorted(g.actions))}" for g in token.grants)
        expiry = (
            time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(token.expires_at / 1000))
            if token.expires_at
            else "never"
        )
        kind = "one-time" if token.one_time else "robot"
        print(f"{token.name}\t{token.status}\t{kind}\texpires {expiry}\t{scopes}")


async def _token_change(
    settings: Settings, a: argparse.Namespace, registries: Registries, store: CredentialStore
) -> None:
    registry = await _registry(registries, a.registry)
    token = next((t for t in await store.list_tokens(registry.id) if t.name == a.name), None)
    if token is None:
        raise CommandError(f"no token {a.name!r} in registry {registry.name}")
    if a.action == "delete":
        await store.delete_token(token.id)
    else:
        await store.update_token(token.id, status=DISABLED if a.action == "disable" else ENABLED)
    await store.audit("cli", f"token.{a.action}", f"{registry.name}/{a.name}", None)
    print(f"{a.action}d token {a.name} (in effect within seconds on running gateways)")


_COMMANDS = {
    ("registry", "create"): _registry_create,
    ("registry", "delete"): _registry_delete,
    ("registry", "list"): _registry_list,
    ("registry", "update"): _registry_update,
    ("gc", None): _gc,
    ("user", "create"): _user_create,
    ("user", "delete"): _user_delete,
    ("user", "disable"): _user_status,
    ("user", "enable"): _user_status,
    ("user", "password"): _user_password,
    ("token", "create"): _token_create,
    ("token", "list"): _token_list,
    ("token", "disable"): _token_change,
    ("token", "enable"): _token_change,
    ("token", "delete"): _token_change,
}
