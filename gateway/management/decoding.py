"""A request's body and query string as models, and validation errors as the API's 400 messages.

Each message names where the problem is (`garbageCollectionSchedule.days[0]: must be one of
mon, …`), so a client can tell which field to fix; every problem found is listed.
"""

from __future__ import annotations

import re
from typing import TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from .errors import PAYLOAD_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE, ApiError, invalid
from .model import RULE, Body, Query

MAX_BODY_BYTES = 64 * 1024

B = TypeVar("B", bound=Body)
Q = TypeVar("Q", bound=Query)
M = TypeVar("M", bound=BaseModel)


async def read_body(request: web.Request, model: type[B]) -> B:
    if request.content_type != "application/json":
        raise ApiError(415, UNSUPPORTED_MEDIA_TYPE, "send the request body as Content-Type: application/json")
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise _too_large()
    body = bytearray()
    async for chunk in request.content.iter_any():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise _too_large()
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise invalid(f"the request body is not valid JSON: {exc}") from None
    return validate(model, value, "the request body")


def _too_large() -> ApiError:
    return ApiError(413, PAYLOAD_TOO_LARGE, f"request bodies are limited to {MAX_BODY_BYTES} bytes")


def read_query(request: web.Request, model: type[Q] | None) -> Q | None:
    """The query string as `model` (None: the operation takes no parameters). An unknown or
    repeated parameter is refused, not ignored."""
    allowed = sorted(field.alias or name for name, field in model.model_fields.items()) if model else []
    query: dict[str, str] = {}
    for name, value in request.query.items():
        if name not in allowed:
            accepted = f"accepted: {', '.join(allowed)}" if allowed else "this operation takes none"
            raise invalid(f"unknown query parameter {name!r} ({accepted})")
        if name in query:
            raise invalid(f"query parameter {name!r} is given more than once")
        query[name] = value
    return None if model is None else validate(model, query, "the query")


def validate(model: type[M], value: object, what: str) -> M:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise invalid(*(_message(error, what) for error in exc.errors())) from None


def _message(error: ErrorDetails, what: str) -> str:
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"])
    return f"{where.lstrip('.') or what}: {_problem(error)}"


def _problem(error: ErrorDetails) -> str:
    kind, context = error["type"], error.get("ctx", {})
    if kind == RULE:
        return str(context["reason"])
    if kind == "literal_error":
        # pydantic lists the choices as "'a', 'b' or 'c'"
        choices = re.findall(r"'((?:[^'\\]|\\.)*)'", str(context["expected"]))
        return f"must be one of {', '.join(choices)}, not {error['input']!r}"
    if kind in _LIMITS:
        return _LIMITS[kind].format(**context)
    return _TYPES.get(kind, error["msg"])


_TYPES = {
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "int_type": "must be an integer",
    "list_type": "must be an array",
    "model_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "missing": "is required",
}
_LIMITS = {
    "too_short": "must have at least {min_length} item(s)",
    "too_long": "must have at most {max_length} items, not {actual_length}",
    "string_too_short": "must be at least {min_length} characters",
    "string_too_long": "must be at most {max_length} characters",
    "greater_than_equal": "must be at least {ge}",
    "less_than_equal": "must be at most {le}",
}
