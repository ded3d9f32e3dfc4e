"""Reading request bodies: JSON objects checked field by field, with a 400 that names the field.

Unknown fields are refused rather than ignored, so that a typo (`apiSubnetAlowList`) is an
error instead of a silently unprotected registry. Booleans are not numbers, numbers are not
strings: JSON types are taken as they are, never coerced.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

import orjson
from aiohttp import web

from .errors import PAYLOAD_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE, ApiError, invalid

MAX_BODY_BYTES = 64 * 1024


async def read_json(request: web.Request) -> object:
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
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise invalid(f"the request body is not valid JSON: {exc}") from None


def _too_large() -> ApiError:
    return ApiError(413, PAYLOAD_TOO_LARGE, f"request bodies are limited to {MAX_BODY_BYTES} bytes")


def check_text(
    value: object,
    where: str,
    *,
    pattern: re.Pattern[str] | None = None,
    max_length: int | None = None,
    choices: Sequence[str] | None = None,
    hint: str = "",
) -> str:
    if not isinstance(value, str):
        raise invalid(f"{where} must be a string")
    if choices is not None and value not in choices:
        raise invalid(f"{where} must be one of {', '.join(choices)}, not {value!r}")
    if max_length is not None and len(value) > max_length:
        raise invalid(f"{where} must be at most {max_length} characters")
    if pattern is not None and pattern.fullmatch(value) is None:
        raise invalid(f"{where} {value!r} is invalid{': ' + hint if hint else ''}")
    return value


class Fields:
    """One JSON object of a request. Constructing it checks that it is an object, that it has
    no unknown fields and all the required ones; the accessors then check each field's type."""

    def __init__(
        self, value: object, where: str, allowed: Collection[str], required: Collection[str] = ()
    ) -> None:
        self._where = where
        label = where or "the request body"
        if not isinstance(value, dict):
            raise invalid(f"{label} must be a JSON object")
        unknown = sorted(set(value) - set(allowed))
        if unknown:
            raise invalid(
                f"{label}: unknown field(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})"
            )
        missing = [name for name in required if name not in value]
        if missing:
            raise invalid(f"{label}: missing required field(s) {', '.join(missing)}")
        self._value: dict[str, object] = value

    def __contains__(self, name: str) -> bool:
        return name in self._value

    def path(self, name: str) -> str:
        return f"{self._where}.{name}" if self._where else name

    def is_null(self, name: str) -> bool:
        return name in self._value and self._value[name] is None

    def raw(self, name: str) -> object:
        return self._value[name]

    def text(
        self,
        name: str,
        *,
        pattern: re.Pattern[str] | None = None,
        max_length: int | None = None,
        choices: Sequence[str] | None = None,
        hint: str = "",
    ) -> str:
        return check_text(
            self._value[name],
            self.path(name),
            pattern=pattern,
            max_length=max_length,
            choices=choices,
            hint=hint,
        )

    def flag(self, name: str) -> bool:
        value = self._value[name]
        if not isinstance(value, bool):
            raise invalid(f"{self.path(name)} must be true or false")
        return value

    def array(self, name: str, *, min_items: int = 0, max_items: int | None = None) -> list[object]:
        value = self._value[name]
        where = self.path(name)
        if not isinstance(value, list):
            raise invalid(f"{where} must be an array")
        if len(value) < min_items:
            raise invalid(f"{where} must have at least {min_items} item(s)")
        if max_items is not None and len(value) > max_items:
            raise invalid(f"{where} must have at most {max_items} items, not {len(value)}")
        return value

    def child(self, name: str, allowed: Collection[str], required: Collection[str] = ()) -> Fields:
        return Fields(self._value[name], self.path(name), allowed, required)
