"""Errors on the wire, as the OCI distribution-spec wants them:
`{"errors": [{"code", "message", "detail"}]}` with the code's HTTP status.

Nothing escapes as a bare 500 page: an unexpected exception is logged with its traceback and
answered with an OCI body that says nothing about the internals.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from ocigate.storage.errors import RegistryError, RequestBodyTimeout, StorageFull

from .hosts import check_host
from .request_id import HEADER as REQUEST_ID_HEADER
from .request_id import assign_request_id

log = logging.getLogger("ocigate.gateway")

API_VERSION_HEADER = ("Docker-Distribution-API-Version", "registry/2.0")
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def oci_error(
    status: int,
    code: str,
    message: str,
    detail: Any = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body = orjson.dumps({"errors": [{"code": code, "message": message, "detail": detail}]})
    response = web.Response(status=status, body=body, content_type="application/json")
    if headers:
        response.headers.update(headers)
    return response


def from_registry_error(error: RegistryError) -> web.Response:
    response = oci_error(error.status, error.code, error.message, error.detail, error.headers)
    if isinstance(error, RequestBodyTimeout):
        response.force_close()  # the rest of the body is not coming: no next request either
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    identifier = assign_request_id(request)
    try:
        check_host(request)  # before anything may copy it into a response header
        response = await handler(request)
    except Exception:
        if request.writer is not None and request.writer.output_size:
            # The status line is already out: a second response would corrupt the body, so
            # let aiohttp drop the connection (the client sees a short read, not wrong bytes).
            log.warning("%s %s failed after the response started", request.method, request.path)
            raise
        response = _error_response(request)
    headers = response.headers
    headers[API_VERSION_HEADER[0]] = API_VERSION_HEADER[1]
    headers[REQUEST_ID_HEADER] = identifier
    return response


def _error_response(request: web.Request) -> web.Response:
    """The OCI error answer for the exception being handled."""
    try:
        raise
    except RegistryError as error:
        return from_registry_error(error)
    except web.HTTPException as exc:
        return oci_error(exc.status, "UNSUPPORTED", exc.reason)
    except (ConnectionResetError, web.RequestPayloadError) as exc:
        # the body ended early or was malformed: nothing of it was kept (see storage/uploads.py)
        log.info("%s %s: incomplete request body: %s", request.method, request.path, exc)
        return oci_error(400, "BLOB_UPLOAD_INVALID", "incomplete request body", str(exc))
    except OSError as exc:
        if exc.errno not in _DISK_FULL:
            log.exception("unhandled error in %s %s", request.method, request.path)
            return oci_error(500, "UNKNOWN", "internal server error")
        # the stores report a full disk themselves; this is a write they do not wrap
        log.warning("%s %s: disk full: %s", request.method, request.path, exc)
        return from_registry_error(StorageFull())
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return oci_error(500, "UNKNOWN", "internal server error")
