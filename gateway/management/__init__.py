"""The management API (`/api/…`): registries, tokens, repositories, artifacts, audit trail.

JSON over HTTP on every host, authenticated with an account user's credentials. Each request
body, query string and response is a pydantic model (`*_models.py`, `pagination.py`); the
route table (`routes.py`) ties them to the handlers, and the OpenAPI document served at
`/api/openapi.json` is generated from both (`openapi.py`); schemathesis (tests/management/)
checks the server against it.
"""

from __future__ import annotations

from aiohttp import web

from ocigate.auth.service import Authenticator
from ocigate.storage.registries import Registries
from ocigate.storage.usage import UsageCounters

from ..access import credential_store
from ..settings import Settings
from .api import ManagementApi
from .context import Services

__all__ = ["install_management"]


def install_management(
    app: web.Application,
    settings: Settings,
    registries: Registries,
    authenticator: Authenticator | None,
    usage: UsageCounters,
) -> None:
    """Add `/api/…` to an application being built."""
    services = Services(settings, registries, credential_store(registries), authenticator, usage)
    api = ManagementApi(services)
    app.router.add_route("*", "/api", api)
    # [\s\S], not `.`: a percent-encoded newline in a path must still reach the dispatcher
    app.router.add_route("*", r"/api/{tail:[\s\S]*}", api)
