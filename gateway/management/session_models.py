"""Console sessions: the sign-in body and the session shown."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .envelope import Envelope
from .model import Body, Resource, Timestamp


class SessionCreate(Body):
    username: Annotated[str, Field(min_length=1, max_length=256)]
    password: Annotated[str, Field(min_length=1, max_length=1024)]


class SessionMetadata(Resource):
    created_at: Timestamp
    expires_at: Timestamp


class SessionProperties(Resource):
    username: str
    csrf_token: str = Field(description="send it as X-CSRF-Token with every change made with this session")


class Session(Envelope):
    type: Literal["session"] = "session"
    metadata: SessionMetadata
    properties: SessionProperties
