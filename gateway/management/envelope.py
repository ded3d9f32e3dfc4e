"""Resource envelopes `{id, type, href, metadata, properties}`, and the JSON responses.

Every resource the management API returns has the same five keys, so clients handle them
alike: `metadata` holds what the server keeps about the resource (times), `properties` what the
resource is. Each resource is an `Envelope` subclass that fixes `type` and the two parts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

from aiohttp import web

from .model import Resource, Timestamp

API = "/api"


class Envelope(Resource):
    id: str
    type: str
    href: str


class Created(Resource):
    created_at: Timestamp


def timestamp(ms: int | None) -> str | None:
    """Milliseconds since the epoch as RFC 3339 in UTC (`2025-01-31T12:00:00.000Z`)."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def created(ms: int) -> Created:
    return Created(created_at=timestamp(ms))


def href(*segments: str) -> str:
    """`/api/…` with each segment percent-encoded (repository names carry `/`, sent as `%2F`)."""
    return API + "".join("/" + quote(segment, safe=":@") for segment in segments)


def json_response(body: Resource, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=body.model_dump_json().encode(), content_type="application/json", headers=headers
    )
