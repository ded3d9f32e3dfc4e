"""Resource envelopes `{id, type, href, metadata, properties}` and list pages.

Every resource the management API returns has the same five keys, so clients handle them
alike: `metadata` holds what the server keeps about the resource (times), `properties` what the
resource is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import orjson
from aiohttp import web

API = "/api"
Json = dict[str, Any]


def timestamp(ms: int | None) -> str | None:
    """Milliseconds since the epoch as RFC 3339 in UTC (`2025-01-31T12:00:00.000Z`)."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def href(*segments: str) -> str:
    """`/api/…` with each segment percent-encoded (repository names carry `/`, sent as `%2F`)."""
    return API + "".join("/" + quote(segment, safe=":@") for segment in segments)


def resource(
    type_: str, id_: str, location: str, properties: Json, metadata: Mapping[str, Any] | None = None
) -> Json:
    return {
        "id": id_,
        "type": type_,
        "href": location,
        "metadata": dict(metadata or {}),
        "properties": properties,
    }


def page(
    items: Sequence[Json], *, total: int, limit: int, next_href: str | None, offset: int | None = None
) -> Json:
    body: Json = {"items": list(items), "total": total, "limit": limit, "next": next_href}
    if offset is not None:
        body["offset"] = offset
    return body


def json_response(body: Json, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )
