"""The dispatcher that answers every `/api/…` request.

One catch-all aiohttp route hands `/api/…` here (as `/v2/…` goes to its own dispatcher), so
that every answer, a 404 for an unknown path and a 405 included, has the management error
shape, and so that path parameters are percent-decoded once, from the raw path: a repository
name is one segment with its `/` sent as `%2F`. The body and the query string are validated
here, into the models the handler declares, before the handler runs.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from ocigate.storage.errors import RegistryError

from .authn import Authentication
from .context import Call, Caller, Services
from .decoding import read_body, read_query
from .errors import (
    INSUFFICIENT_STORAGE,
    INTERNAL_ERROR,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    SERVICE_UNAVAILABLE,
    VALIDATION_ERROR,
    ApiError,
    error_response,
)
from .routes import ROUTES

log = logging.getLogger("ocigate.management")

_DOMAIN_CODES = {
    400: VALIDATION_ERROR,
    404: NOT_FOUND,
    503: SERVICE_UNAVAILABLE,
    507: INSUFFICIENT_STORAGE,
}


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
            code = _DOMAIN_CODES.get(error.status, INTERNAL_ERROR)
            return error_response(error.status, code, error.message, headers=error.headers)
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
        arguments: dict[str, Any] = {}
        query = read_query(request, operation.query)
        if query is not None:
            arguments["query"] = query
        if operation.body is not None:
            arguments["body"] = await read_body(request, operation.body)
        return await operation.handler(self._services, Call(request, caller, params), **arguments)
