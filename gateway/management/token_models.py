"""Tokens of a registry: the bodies a request sends and the resources shown.

A scope's repository pattern is checked by the same function the CLI uses (`parse_grant`); the
password exists in clear only in the create response (`TokenCreated`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from ocigate.auth.admin import InvalidRequest, validate_expiry
from ocigate.auth.scopes import (
    ACTIONS,
    CATALOG,
    GRANT_PATTERN,
    REGISTRY,
    REPOSITORY,
    Action,
    Grant,
    parse_grant,
)
from ocigate.auth.store import ENABLED, TokenRecord

from .envelope import Envelope
from .errors import invalid
from .model import Body, Matches, Resource, Timestamp, absent, rule, without_defaults
from .pagination import OffsetPage

NAME_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
TokenName = Annotated[str, Matches(NAME_PATTERN, "1-64 letters, digits, '.', '_' or '-'")]
Status = Literal["enabled", "disabled"]
MAX_SCOPES = 50
MAX_PATTERN_LENGTH = 255
_EXPIRY_HINT = "must be an ISO 8601 date and time with a time zone, e.g. 2030-01-31T12:00:00Z"


class Scope(Body):
    name: Annotated[
        str,
        Field(
            max_length=MAX_PATTERN_LENGTH,
            json_schema_extra={"pattern": f"^(?:{GRANT_PATTERN})$"},  # checked by parse_grant
            description="repository pattern: `*`, `team/*` or `team/app`; `catalog` for type registry",
        ),
    ]
    type: Literal["repository", "registry"]
    actions: Annotated[list[Action], Field(min_length=1, max_length=len(ACTIONS))]

    @model_validator(mode="after")
    def _grantable(self) -> Scope:
        if self.type == REGISTRY and self.name != CATALOG:
            raise rule("name must be 'catalog' for a scope of type registry")
        try:
            self.grant()
        except ValueError as exc:
            raise rule(str(exc)) from None
        return self

    def grant(self) -> Grant:
        return parse_grant(self.type, self.name, list(self.actions))

    @classmethod
    def shown(cls, grant: Grant) -> Scope:
        """A grant as the API shows it. A registry grant (the catalog) is stored as `*` and shown
        as the `pull` it amounts to, so that responses use the same actions as requests."""
        if grant.type == REGISTRY:
            return cls.model_construct(name=CATALOG, type=REGISTRY, actions=["pull"])
        actions: list[Action] = [action for action in ACTIONS if action in grant.actions]
        return cls.model_construct(name=grant.pattern, type=REPOSITORY, actions=actions)


def _expiry_ms(text: str) -> int:
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            raise ValueError("no time zone")
        # in UTC first: a moment past year 9999 there could be stored but never shown
        return int(moment.astimezone(UTC).timestamp() * 1000)
    except (OverflowError, ValueError):
        raise rule(f"{_EXPIRY_HINT}, not {text!r}") from None


Scopes = Annotated[list[Scope], Field(min_length=1, max_length=MAX_SCOPES)]
ExpiryDate = Annotated[
    Annotated[str, Field(max_length=64, json_schema_extra={"format": "date-time"})] | None,
    Field(description="at least one hour ahead; null: the token never expires"),
]


class TokenPatch(Body):
    """status, scopes and expiryDate as given, the rest as it is; name and oneTime are what the
    token is: they may be repeated, not changed."""

    model_config = ConfigDict(json_schema_extra=without_defaults)
    name: TokenName = absent()
    scopes: Scopes = absent()
    expiry_date: ExpiryDate = None
    status: Status = absent()
    one_time: bool = absent()

    @field_validator("expiry_date")
    @classmethod
    def _at_least_an_hour_ahead(cls, text: str | None) -> str | None:
        if text is not None:
            try:
                validate_expiry(_expiry_ms(text))
            except InvalidRequest as exc:
                raise rule(str(exc)) from None
        return text

    @property
    def expires_at(self) -> int | None:
        """expiryDate in ms; None if not given or null (never expires)."""
        return None if self.expiry_date is None else _expiry_ms(self.expiry_date)

    @property
    def clears_expiry(self) -> bool:
        return "expiry_date" in self.model_fields_set and self.expiry_date is None

    def grants(self) -> tuple[Grant, ...] | None:
        return None if self.scopes is None else tuple(scope.grant() for scope in self.scopes)

    def check_identity(self, token: TokenRecord) -> None:
        if self.name is not None and self.name != token.name:
            raise invalid("name cannot be changed: it is the token's username; create a new token instead")
        if self.one_time is not None and self.one_time != token.one_time:
            raise invalid("oneTime cannot be changed; create a new token instead")


class TokenCreate(TokenPatch):
    """POST, and PUT: status enabled, no expiry and oneTime false unless said otherwise."""

    model_config = ConfigDict(json_schema_extra=None)
    name: TokenName
    scopes: Scopes
    status: Status = ENABLED
    one_time: bool = False


class TokenProperties(Resource):
    name: str
    scopes: list[Scope]
    expiry_date: Timestamp | None
    status: Status
    one_time: bool


class Credentials(Resource):
    username: str
    password: str = Field(description="shown in this response only")
    docker_login: str


class NewTokenProperties(TokenProperties):
    credentials: Credentials


class TokenMetadata(Resource):
    created_at: Timestamp
    first_used_at: Timestamp | None
    consumed_at: Timestamp | None


class Token(Envelope):
    type: Literal["token"] = "token"
    metadata: TokenMetadata
    properties: TokenProperties


class TokenCreated(Envelope):
    type: Literal["token"] = "token"
    metadata: TokenMetadata
    properties: NewTokenProperties


class TokenList(OffsetPage[Token]):
    pass
