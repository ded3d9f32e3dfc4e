"""What every management handler gets: the services, the caller, and the request's path
parameters (a handler that takes a body or a query string declares it: `body: TokenCreate`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web

from ocigate.auth.service import Authenticator
from ocigate.auth.store import CredentialStore
from ocigate.storage.metadata import RegistryRecord
from ocigate.storage.registries import Registries
from ocigate.storage.usage import UsageCounters

from ..settings import Settings
from .errors import not_found


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated account user (tenants are accounts: a caller sees only its own)."""

    account_id: str
    username: str
    address: str | None


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    registries: Registries
    store: CredentialStore
    authenticator: Authenticator | None  # None when OCIGATE_AUTH=none
    usage: UsageCounters

    def hostname(self, registry_name: str) -> str:
        domain = self.settings.server.domain
        return f"{registry_name}.{domain}" if domain else registry_name


@dataclass(frozen=True, slots=True)
class Call:
    request: web.Request
    caller: Caller
    params: Mapping[str, str]  # path parameters, percent-decoded

    async def owned_registry(self, services: Services) -> RegistryRecord:
        """The registry `{id}` names, if the caller's account owns it.

        # SECURITY: another account's registry is a 404 exactly like a missing one, so that
        # tenants cannot even learn which ids exist."""
        record = await services.registries.metadata.registries.get_registry_by_id(self.params["id"])
        if record is None or record.account_id != self.caller.account_id:
            raise not_found("registry")
        return record

    async def audit(self, services: Services, action: str, target: str, detail: object = None) -> None:
        await services.store.audit(
            self.caller.username,
            action,
            target,
            self.caller.address,
            detail,
            account_id=self.caller.account_id,
        )
