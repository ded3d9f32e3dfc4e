"""The base classes of the management API's models, and the markers their fields use.

Each request body, query string and resource is one pydantic model: the handlers get validated
instances, and the OpenAPI document (`openapi.py`) is generated from the same classes, so a rule
is written once. pydantic rather than msgspec: its validation errors are structured (kind,
location, context), so `decoding.py` words them as the API's messages without parsing text, and
a model's own rules (validators) report where they failed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler, GetJsonSchemaHandler, model_validator
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

RULE = "rule"  # the error type of the rules below and of the models' validators

# RFC 3339 in UTC with milliseconds (`envelope.timestamp`)
Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


def rule(message: str) -> PydanticCustomError:
    """An input error a model's validator raises; the message reads after the field's location."""
    # the message goes in as context: braces in user input must not be taken for placeholders
    return PydanticCustomError(RULE, "{reason}", {"reason": message})


def absent() -> Any:
    """The default of a field that a request may leave out (PATCH) but never set to null:
    pydantic does not validate defaults, and the document leaves a null default out."""
    return Field(default=None)


class _Model(BaseModel):
    # JSON names are camelCase, Python names snake_case; responses are generated in the
    # serialization mode, where a field always present is required
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        serialize_by_alias=True,
        json_schema_serialization_defaults_required=True,
    )


class Body(_Model):
    """A JSON object of a request: strict (JSON types as they are, never coerced: `true` is no
    number, `1` no string) and closed, so that a typo (`apiSubnetAlowList`) is an error instead
    of a silently unprotected registry."""

    model_config = ConfigDict(strict=True)
    _json_names: ClassVar[frozenset[str]] = frozenset()
    _required: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        fields = {field.alias or name: field for name, field in cls.model_fields.items()}
        cls._json_names = frozenset(fields)
        cls._required = tuple(name for name, field in fields.items() if field.is_required())

    @model_validator(mode="before")
    @classmethod
    def _known_and_required_fields(cls, value: Any) -> Any:
        # before the fields: one message naming every unknown (or missing) field, and the allowed
        if isinstance(value, dict):
            unknown = value.keys() - cls._json_names
            if unknown:
                allowed = ", ".join(sorted(cls._json_names))
                raise rule(f"unknown field(s) {', '.join(sorted(unknown))} (allowed: {allowed})")
            missing = [name for name in cls._required if name not in value]
            if missing:
                raise rule(f"missing required field(s) {', '.join(missing)}")
        return value


class Query(_Model):
    """A query string: its values are text, each field says how it reads one (`pagination.py`)."""

    model_config = ConfigDict(strict=True)


class Resource(_Model):
    """What a response holds; the handlers build these by their Python names."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=False)


def without_defaults(schema: dict[str, Any]) -> None:
    """`json_schema_extra` of a partial body (PATCH): a field left out keeps its value, so a
    default would be a false promise."""
    for field in schema.get("properties", {}).values():
        field.pop("default", None)


@dataclass(frozen=True, slots=True)
class Matches:
    """A string matching `pattern`, or a 400 saying what is expected (`hint`)."""

    pattern: str
    hint: str

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        regex = re.compile(self.pattern)

        def check(value: str) -> str:
            if regex.fullmatch(value) is None:  # not `search`: `$` would let a final newline by
                raise rule(f"{value!r} is invalid: {self.hint}")
            return value

        return core_schema.no_info_after_validator_function(check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {**handler(schema), "pattern": self.pattern}


@dataclass(frozen=True, slots=True)
class Unique:
    """An array that lists no item twice (after its items' own validation)."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        def check(items: list[Any]) -> list[Any]:
            seen = set()
            for item in items:
                if item in seen:
                    raise rule(f"lists {item!r} twice")
                seen.add(item)
            return items

        return core_schema.no_info_after_validator_function(check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {**handler(schema), "uniqueItems": True}
