"""The management API (`/api/…`): registries, tokens, repositories, artifacts, audit trail.

JSON over HTTP on every host, authenticated with an account user's credentials; its OpenAPI
document is served at `/api/openapi.json` (`openapi.py`), and the implementation is checked
against it by schemathesis (tests/management/).
"""

from __future__ import annotations

from aiohttp import web

from ocigate.auth.service import Authenticator
from ocigate.storage.registries import Registries

from ..access import credential_store
from ..settings import Settings
from .context import Services
from .routes import ManagementApi
from .usage import USAGE, UsageCounters

__all__ = ["install_management"]


def install_management(
    app: web.Application, settings: Settings, registries: Registries, authenticator: Authenticator | None
) -> None:
    """Add `/api/…` and the repository usage counters to an application being built."""
    usage = UsageCounters(registries.metadata)
    services = Services(settings, registries, credential_store(registries), authenticator, usage)
    api = ManagementApi(services)
    app.router.add_route("*", "/api", api)
    # [\s\S], not `.`: a percent-encoded newline in a path must still reach the dispatcher
    app.router.add_route("*", r"/api/{tail:[\s\S]*}", api)
    app[USAGE] = usage
    app.on_startup.append(usage.start)
    app.on_shutdown.append(usage.stop)  # before on_cleanup closes the metadata store
