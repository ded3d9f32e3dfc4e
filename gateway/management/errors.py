"""Management API errors on the wire: `{"httpStatus": 404, "messages": [{"errorCode", "message"}]}`.

The shape of a managed cloud registry's API (docs/design.md), not the OCI `{"errors": [...]}` of the
`/v2/` routes: tools written against the management API read `messages`.
"""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import Field, WithJsonSchema

from .model import Resource

VALIDATION_ERROR = "VALIDATION_ERROR"
UNAUTHORIZED = "UNAUTHORIZED"
FORBIDDEN = "FORBIDDEN"
NOT_FOUND = "NOT_FOUND"
METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
CONFLICT = "CONFLICT"
PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
INTERNAL_ERROR = "INTERNAL_ERROR"
SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
INSUFFICIENT_STORAGE = "INSUFFICIENT_STORAGE"
TOO_MANY_REQUESTS = "TOO_MANY_REQUESTS"

ERROR_CODES = (
    VALIDATION_ERROR,
    UNAUTHORIZED,
    FORBIDDEN,
    NOT_FOUND,
    METHOD_NOT_ALLOWED,
    CONFLICT,
    PAYLOAD_TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE,
    INTERNAL_ERROR,
    SERVICE_UNAVAILABLE,
    INSUFFICIENT_STORAGE,
    TOO_MANY_REQUESTS,
)


ErrorCode = Annotated[str, WithJsonSchema({"type": "string", "enum": list(ERROR_CODES)})]


class Message(Resource):
    error_code: ErrorCode
    message: str


class Error(Resource):
    """Every error answer: its status, and what is wrong."""

    http_status: int = Field(ge=400, le=599)
    messages: list[Message] = Field(min_length=1)


class ApiError(Exception):
    def __init__(self, status: int, code: str, *messages: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(*messages)
        self.status = status
        self.code = code
        self.messages = messages
        self.headers = headers or {}

    def response(self) -> web.Response:
        return error_response(self.status, self.code, *self.messages, headers=self.headers)


def error_response(
    status: int, code: str, *messages: str, headers: dict[str, str] | None = None
) -> web.Response:
    body = Error(http_status=status, messages=[Message(error_code=code, message=m) for m in messages])
    return web.Response(
        status=status, body=body.model_dump_json().encode(), content_type="application/json", headers=headers
    )


def invalid(*messages: str) -> ApiError:
    return ApiError(400, VALIDATION_ERROR, *messages)


def not_found(what: str) -> ApiError:
    return ApiError(404, NOT_FOUND, f"{what} not found")


def conflict(message: str) -> ApiError:
    return ApiError(409, CONFLICT, message)
