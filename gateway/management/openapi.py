"""The OpenAPI 3.1 document of the management API, generated from the route table and the models.

Schemas come from the models the handlers validate requests with and build responses from
(pydantic's JSON Schema: requests in the validation mode, responses in the serialization mode);
paths from the route table: each operation's body and query parameters are what its handler
declares, its error responses what the dispatcher and the handler can answer. So the document
says exactly what the server accepts, and schemathesis (tests/management/) checks that the
server refuses what it forbids and answers only what it says.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, models_json_schema
from pydantic_core import core_schema

from .errors import Error

if TYPE_CHECKING:
    from .routes import Operation, PathParameter, Route

Schema = dict[str, Any]
_REF = "#/components/schemas/"

_INFO = {
    "title": "ocigate management API",
    "version": "1.0.0",
    "description": "Registries, their tokens, repositories and artifacts, and the audit trail of "
    "an account. Authenticate with an account user's username and password (HTTP Basic); "
    "registry tokens are refused. Another account's resources answer 404.",
}
_ERRORS = {
    400: "invalid input; the messages say which field and why",
    401: "no or invalid account credentials",
    403: "registry token credentials (the management API takes account users only)",
    404: "not found, or another account's",
    409: "conflicts with the current state",
    413: "request body too large",
    415: "request body is not application/json",
    429: "too many failed logins from this address or for this user (see Retry-After)",
}


class _Generator(GenerateJsonSchema):
    """pydantic's JSON Schema without titles (the names say it) and without null defaults (a
    field left out of a partial body is not set to null)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> Schema:
        generated = super().default_schema(schema)
        if "default" in generated and generated["default"] is None:
            del generated["default"]
        return generated


def build(routes: Sequence[Route], parameters: Mapping[str, PathParameter]) -> Schema:
    operations = [operation for route in routes for operation in route.operations.values()]
    refs, schemas = _components(operations)
    paths = {route.template: _path_item(route, parameters, refs) for route in routes}
    return {
        "openapi": "3.1.0",
        "info": _INFO,
        "servers": [{"url": "/"}],
        "security": [{"basicAuth": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"basicAuth": {"type": "http", "scheme": "basic"}},
            "schemas": schemas,
        },
    }


_Key = tuple[type[BaseModel], JsonSchemaMode]


def _components(operations: list[Operation]) -> tuple[dict[_Key, Schema], dict[str, Schema]]:
    keys: list[_Key] = [(Error, "serialization")]
    for operation in operations:
        if operation.body is not None:
            keys.append((operation.body, "validation"))
        if isinstance(operation.reply.model, type) and issubclass(operation.reply.model, BaseModel):
            keys.append((operation.reply.model, "serialization"))
    unique = list(dict.fromkeys(keys))
    refs, definitions = models_json_schema(unique, ref_template=_REF + "{model}", schema_generator=_Generator)
    schemas = definitions["$defs"]
    for schema in schemas.values():
        schema.pop("title", None)
    return {key: refs[key] for key in unique}, dict(sorted(schemas.items()))


def _schema(annotation: Any) -> Schema:
    return TypeAdapter(annotation).json_schema(schema_generator=_Generator)


def _path_item(route: Route, parameters: Mapping[str, PathParameter], refs: Mapping[_Key, Schema]) -> Schema:
    item: Schema = {}
    names = route.parameter_names
    if names:
        item["parameters"] = [_path_parameter(name, parameters[name]) for name in names]
    malformed = {parameters[name].malformed for name in names}
    for method, operation in route.operations.items():
        item[method.lower()] = _operation(operation, method, refs, has_path=bool(names), malformed=malformed)
    return item


def _path_parameter(name: str, parameter: PathParameter) -> Schema:
    schema: Schema = {"name": name, "in": "path", "required": True, "schema": _schema(parameter.schema)}
    if parameter.description:
        schema["description"] = parameter.description
    return schema


def _query_parameters(model: type[BaseModel]) -> list[Schema]:
    schema = model.model_json_schema(schema_generator=_Generator)
    required = set(schema.get("required", ()))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": property_schema}
        for name, property_schema in schema["properties"].items()
    ]


def _operation(
    operation: Operation, method: str, refs: Mapping[_Key, Schema], *, has_path: bool, malformed: set[int]
) -> Schema:
    errors: dict[int, str] = {}
    if not operation.public:
        errors |= {status: _ERRORS[status] for status in (401, 403, 429)}
    if operation.body is not None:
        errors |= {status: _ERRORS[status] for status in (400, 413, 415)}
    if operation.query is not None:
        errors[400] = _ERRORS[400]
    if has_path:
        errors |= {status: _ERRORS[status] for status in {404, *malformed}}
    errors |= {status: text or _ERRORS[status] for status, text in operation.errors.items()}

    bodiless = method == "HEAD"
    responses = {str(operation.reply.status): _reply(operation, refs, bodiless)}
    error_schema = refs[(Error, "serialization")]
    responses |= {
        str(status): _error(status, errors[status], None if bodiless else error_schema)
        for status in sorted(errors)
    }
    generated: Schema = {"operationId": operation.operation_id, "summary": operation.summary}
    if operation.public:
        generated["security"] = []
    if operation.query is not None:
        generated["parameters"] = _query_parameters(operation.query)
    if operation.body is not None:
        body_schema = refs[(operation.body, "validation")]
        generated["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body_schema}},
        }
    generated["responses"] = responses
    return generated


def _reply(operation: Operation, refs: Mapping[_Key, Schema], bodiless: bool) -> Schema:
    reply = operation.reply
    response: Schema = {"description": reply.description}
    if reply.model is not None and not bodiless:
        key: _Key = (reply.model, "serialization")
        schema = refs[key] if key in refs else _schema(reply.model)
        response["content"] = {"application/json": {"schema": schema}}
    if reply.status == 201:
        response["headers"] = {"Location": {"schema": {"type": "string"}, "required": True}}
    return response


def _error(status: int, description: str, schema: Schema | None) -> Schema:
    response: Schema = {"description": description}
    if schema is not None:
        response["content"] = {"application/json": {"schema": schema}}
    if status == 401:
        response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}, "required": True}}
    if status == 429:
        response["headers"] = {"Retry-After": {"schema": {"type": "string"}, "required": True}}
    return response
