"""What every request adds to `/metrics`: a count by route template, method and status class,
its duration by kind (manifest, blob, upload, token, management, other), and the bytes it
received and sent. Recorded by the access logger (access_log.py), which aiohttp calls once
per request with its duration (timed in connection.py): no middleware around every handler.

Labels are bounded: the route is a template (`/v2/{name}/manifests/{reference}`, the aiohttp
resource's canonical path), never the path itself; no repository, host or client address.
"""

from __future__ import annotations

from bisect import bisect_left

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractResource

from ocigate.storage.stats import LATENCY_BUCKETS as BOUNDS

from .metrics import Values
from .routes import Endpoint

__all__ = ["ENDPOINT", "REGISTRY", "SPLICED", "RequestStats", "bytes_sent", "route_of"]

# request keys: the /v2/ endpoint the dispatcher found; the registry the Host named; bytes
# moved by the kernel (splice) past aiohttp's writer, which does not count them
ENDPOINT = "ocigate.endpoint"
REGISTRY = "ocigate.registry"
SPLICED = "ocigate.spliced"

_KINDS = {e.template: e.kind for e in Endpoint}  # route template → kind, as labelled
_UNMATCHED = ("unmatched", "other")  # no route (404 before any handler, malformed requests)
_STATUS = tuple(f"{n}xx" for n in range(10))  # aiohttp allows 100-999
# cells of a row after the bucket counts (one per bound, one above all)
_SUM, _RECEIVED, _SENT = len(BOUNDS) + 1, len(BOUNDS) + 2, len(BOUNDS) + 3


class RequestStats:
    """One row per (route, method, status class): the durations' bucket counts and sum, then
    the bytes received and sent; the exporter adds rows up by kind. One dict lookup and a
    bisect per request (separate counters by kind cost twice as much)."""

    __slots__ = ("rows",)

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, str], list[float]] = {}

    def record(self, request: web.BaseRequest, response: web.StreamResponse, seconds: float) -> None:
        endpoint: Endpoint | None = request.get(ENDPOINT)
        if endpoint is not None:  # /v2/: most requests, and the ones that must stay cheap
            route, kind = endpoint.template, endpoint.kind
        else:
            route, kind = route_of(request)
        method = request.method
        key = (route, method if method in _METHODS else "other", _STATUS[response.status // 100])
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = [0.0] * (_SENT + 1)
        row[bisect_left(BOUNDS, seconds)] += 1
        row[_SUM] += seconds
        row[_RECEIVED] += request.content.total_bytes
        row[_SENT] += bytes_sent(request, response) if kind == "blob" else response.body_length

    def requests(self) -> Values:
        """Requests by (route, method, status class)."""
        return {key: sum(row[:_SUM]) for key, row in list(self.rows.items())}

    def durations(self) -> dict[tuple[str, ...], list[float]]:
        """By (kind,): bucket counts and their sum, as `Timings` rows."""
        return self._by_kind(slice(0, _SUM + 1))

    def received(self) -> Values:
        return {key: row[0] for key, row in self._by_kind(slice(_RECEIVED, _RECEIVED + 1)).items()}

    def sent(self) -> Values:
        return {key: row[0] for key, row in self._by_kind(slice(_SENT, _SENT + 1)).items()}

    def _by_kind(self, cells: slice) -> dict[tuple[str, ...], list[float]]:
        totals: dict[tuple[str, ...], list[float]] = {}
        for (route, _, _), row in list(self.rows.items()):
            kind = (_KINDS[route],)
            total = totals.get(kind)
            if total is None:
                totals[kind] = row[cells]
            else:
                for index, value in enumerate(row[cells]):
                    total[index] += value
        return totals


def bytes_sent(request: web.BaseRequest, response: web.StreamResponse) -> int:
    spliced: int = request.get(SPLICED, 0)
    return response.body_length + spliced


def route_of(request: web.BaseRequest) -> tuple[str, str]:
    """The request's route template and kind."""
    endpoint: Endpoint | None = request.get(ENDPOINT)
    if endpoint is not None:
        return endpoint.template, endpoint.kind
    try:
        resource = request.match_info.route.resource  # type: ignore[attr-defined]
    except (AttributeError, AssertionError):  # never routed: malformed HTTP (aiohttp asserts)
        resource = None
    known = _RESOURCES.get(resource)
    if known is None:
        known = _RESOURCES[resource] = _label(resource)
        _KINDS[known[0]] = known[1]
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
