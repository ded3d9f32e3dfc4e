"""What every request adds to `/metrics`: a count by route template, method and status class,
its duration by kind (manifest, blob, upload, token, management, other), and the bytes it
received and sent. Recorded by the access logger (access_log.py), which aiohttp calls once
per request with the duration it measured anyway: no middleware, no second clock read.

Labels are bounded: the route is a template (`/v2/{name}/manifests/{reference}`, the aiohttp
resource's canonical path), never the path itself; no repository, host or client address.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractResource

from ocigate.storage.stats import Counts, Timings

from .routes import Endpoint

__all__ = ["ENDPOINT", "REGISTRY", "SPLICED", "RequestStats", "bytes_sent", "route_of"]

# request keys: the /v2/ endpoint the dispatcher found; the registry the Host named; bytes
# moved by the kernel (splice) past aiohttp's writer, which does not count them
ENDPOINT = "ocigate.endpoint"
REGISTRY = "ocigate.registry"
SPLICED = "ocigate.spliced"

_V2: dict[Endpoint, tuple[str, str]] = {  # endpoint → (route template, kind)
    Endpoint.BASE: ("/v2/", "other"),
    Endpoint.CATALOG: ("/v2/_catalog", "other"),
    Endpoint.TAGS: ("/v2/{name}/tags/list", "other"),
    Endpoint.MANIFEST: ("/v2/{name}/manifests/{reference}", "manifest"),
    Endpoint.BLOB: ("/v2/{name}/blobs/{digest}", "blob"),
    Endpoint.UPLOADS: ("/v2/{name}/blobs/uploads/", "upload"),
    Endpoint.UPLOAD: ("/v2/{name}/blobs/uploads/{reference}", "upload"),
    Endpoint.REFERRERS: ("/v2/{name}/referrers/{digest}", "other"),
}
_UNMATCHED = ("unmatched", "other")  # no route (404 before any handler, malformed requests)
_STATUS = tuple(f"{n}xx" for n in range(10))  # aiohttp allows 100-999
KINDS = ("manifest", "blob", "upload", "token", "management", "other")


class RequestStats:
    __slots__ = ("bytes_received", "bytes_sent", "durations", "requests")

    def __init__(self) -> None:
        self.requests: Counts = Counts()  # (route, method, status class)
        self.durations = Timings()  # (kind,)
        self.bytes_received: Counts = Counts()  # (kind,)
        self.bytes_sent: Counts = Counts()  # (kind,)

    def record(self, request: web.BaseRequest, response: web.StreamResponse, seconds: float) -> None:
        route, kind = route_of(request)
        method = request.method
        status = response.status
        self.requests[route, method if method in _METHODS else "other", _STATUS[status // 100]] += 1
        key = (kind,)
        self.durations.observe(key, seconds)
        received = request.content.total_bytes
        if received:
            self.bytes_received[key] += received
        self.bytes_sent[key] += bytes_sent(request, response)


def bytes_sent(request: web.BaseRequest, response: web.StreamResponse) -> int:
    spliced: int = request.get(SPLICED, 0)
    return response.body_length + spliced


def route_of(request: web.BaseRequest) -> tuple[str, str]:
    """The request's route template and kind."""
    endpoint = request.get(ENDPOINT)
    if endpoint is not None:
        return _V2[endpoint]
    match_info = getattr(request, "match_info", None)  # a bare BaseRequest: malformed HTTP
    resource = None if match_info is None else match_info.route.resource
    known = _RESOURCES.get(resource)
    if known is None:
        known = _RESOURCES[resource] = _label(resource)
    return known


_RESOURCES: dict[AbstractResource | None, tuple[str, str]] = {}  # the app's routes: a few dozen
_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))


def _label(resource: AbstractResource | None) -> tuple[str, str]:
    if resource is None:
        return _UNMATCHED
    route = resource.canonical
    if route.startswith("/api/"):
        return route, "management"
    if route == "/token":
        return route, "token"
    return route, "other"
