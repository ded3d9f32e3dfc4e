"""The management API's paths, and the dispatcher that answers every `/api/…` request.

One catch-all aiohttp route hands `/api/…` here (as `/v2/…` goes to its own dispatcher), so
that every answer, a 404 for an unknown path and a 405 included, has the management error
shape, and so that path parameters are percent-decoded once, from the raw path: a repository
name is one segment with its `/` sent as `%2F`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote

from aiohttp import web

from ocigate.storage.errors import RegistryError

from . import audit, openapi, registries, repositories, tokens
from .authn import Authentication
from .context import Call, Caller, Services
from .errors import (
    INTERNAL_ERROR,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    SERVICE_UNAVAILABLE,
    VALIDATION_ERROR,
    ApiError,
    error_response,
    invalid,
)

log = logging.getLogger("ocigate.management")

Handler = Callable[[Services, Call], Awaitable[web.StreamResponse]]
OFFSET_PAGED = frozenset({"limit", "offset"})
CURSOR_PAGED = frozenset({"limit", "cursor"})


@dataclass(frozen=True, slots=True)
class Operation:
    handler: Handler
    query: frozenset[str] = frozenset()  # the query parameters it takes; others are a 400
    public: bool = False  # answered without credentials


@dataclass(frozen=True, slots=True)
class Route:
    template: str
    operations: Mapping[str, Operation]
    pattern: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.template)
        object.__setattr__(self, "pattern", re.compile(regex))


REGISTRY = "/api/registries/{id}"
REPOSITORY = REGISTRY + "/repositories/{repository}"

ROUTES: tuple[Route, ...] = (
    Route("/api/openapi.json", {"GET": Operation(openapi.serve, public=True)}),
    Route("/api/locations", {"GET": Operation(registries.list_locations, OFFSET_PAGED)}),
    Route("/api/locations/{location}", {"GET": Operation(registries.get_location)}),
    Route("/api/names/{name}", {"HEAD": Operation(registries.name_in_use)}),
    Route(
        "/api/registries",
        {
            "GET": Operation(registries.list_registries, OFFSET_PAGED),
            "POST": Operation(registries.create),
        },
    ),
    Route(
        REGISTRY,
        {
            "GET": Operation(registries.get),
            "PATCH": Operation(registries.patch),
            "PUT": Operation(registries.replace),
            "DELETE": Operation(registries.delete),
        },
    ),
    Route(
        REGISTRY + "/tokens",
        {"GET": Operation(tokens.list_tokens, OFFSET_PAGED), "POST": Operation(tokens.create)},
    ),
    Route(
        REGISTRY + "/tokens/{tokenId}",
        {
            "GET": Operation(tokens.get),
            "PATCH": Operation(tokens.patch),
            "PUT": Operation(tokens.replace),
            "DELETE": Operation(tokens.delete),
        },
    ),
    Route(REGISTRY + "/repositories", {"GET": Operation(repositories.list_repositories, CURSOR_PAGED)}),
    Route(
        REPOSITORY,
        {"GET": Operation(repositories.get_repository), "DELETE": Operation(repositories.delete_repository)},
    ),
    Route(REPOSITORY + "/artifacts", {"GET": Operation(repositories.list_artifacts, CURSOR_PAGED)}),
    Route(REPOSITORY + "/artifacts/{digest}", {"GET": Operation(repositories.get_artifact)}),
    Route("/api/audit", {"GET": Operation(audit.list_entries, CURSOR_PAGED)}),
    Route("/api/audit/{entryId}", {"GET": Operation(audit.get_entry)}),
)


def _query(request: web.Request, allowed: frozenset[str]) -> dict[str, str]:
    query: dict[str, str] = {}
    for name, value in request.query.items():
        if name not in allowed:
            accepted = f"accepted: {', '.join(sorted(allowed))}" if allowed else "this operation takes none"
            raise invalid(f"unknown query parameter {name!r} ({accepted})")
        if name in query:
            raise invalid(f"query parameter {name!r} is given more than once")
        query[name] = value
    return query


_DOMAIN_CODES = {400: VALIDATION_ERROR, 404: NOT_FOUND, 503: SERVICE_UNAVAILABLE}


class ManagementApi:
    def __init__(self, services: Services) -> None:
        self._services = services
        self._authentication = Authentication(services)

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._dispatch(request)
        except ApiError as error:
            return error.response()
        except RegistryError as error:  # from the domain: e.g. the store is unavailable
            return error_response(
                error.status, _DOMAIN_CODES.get(error.status, INTERNAL_ERROR), error.message
            )
        except (ConnectionResetError, web.RequestPayloadError) as exc:
            log.info("%s %s: incomplete request body: %s", request.method, request.path, exc)
            return error_response(400, VALIDATION_ERROR, "incomplete request body")
        except Exception:
            log.exception("unhandled error in %s %s", request.method, request.path)
            return error_response(500, INTERNAL_ERROR, "internal server error")

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.raw_path.split("?", 1)[0]
        for route in ROUTES:
            match = route.pattern.fullmatch(path)
            if match is not None:
                break
        else:
            raise ApiError(404, NOT_FOUND, f"no such endpoint: {request.path}")
        operation = route.operations.get(request.method)
        if operation is None:
            allowed = ", ".join(route.operations)
            raise ApiError(
                405, METHOD_NOT_ALLOWED, f"{request.method} is not allowed here", headers={"Allow": allowed}
            )
        if operation.public:
            caller = Caller("", "", None)
        else:
            caller = await self._authentication.caller(request)
        params = {name: unquote(value) for name, value in match.groupdict().items()}
        call = Call(request, caller, params, _query(request, operation.query))
        return await operation.handler(self._services, call)
