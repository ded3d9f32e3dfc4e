"""The OpenAPI 3.1 document of the management API, served at `/api/openapi.json`.

Written from the same constants the handlers validate with (patterns, enums, limits), and
exact: every request schema lists its required fields and forbids others, so that a client
generated from it sends only what the server accepts, and schemathesis (tests/management/)
can check that the server refuses what the document forbids and answers only what it says.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from ocigate.auth.scopes import ACTIONS

from . import registry_settings as rs
from . import token_input as ti
from .context import Call, Services
from .errors import ERROR_CODES
from .pagination import DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET

Schema = dict[str, Any]
_REF = "#/components/schemas/"
_ID_PATTERN = "^[0-9a-f]{32}$"
_DIGEST_PATTERN = r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$"


def _ref(name: str) -> Schema:
    return {"$ref": _REF + name}


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def _object(properties: Schema, required: list[str] | None = None) -> Schema:
    """A closed object; by default every property is required (responses)."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
    }


_TIME: Schema = {"type": "string", "format": "date-time"}
_COUNT: Schema = {"type": "integer", "minimum": 0}
_CREATED = _object({"createdAt": _TIME})


def _envelope(type_: str, properties: Schema, metadata: Schema = _CREATED) -> Schema:
    return _object(
        {
            "id": {"type": "string"},
            "type": {"type": "string", "const": type_},
            "href": {"type": "string"},
            "metadata": metadata,
            "properties": properties,
        }
    )


def _page(item: str, *, offset: bool) -> Schema:
    properties: Schema = {
        "items": {"type": "array", "items": _ref(item)},
        "total": _COUNT,
        "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
        "next": _nullable({"type": "string"}),
    }
    if offset:
        properties["offset"] = {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET}
    return _object(properties)


# schemas --------------------------------------------------------------------------------------

_SCHEDULE = _object(
    {
        "days": {
            "type": "array",
            "items": {"type": "string", "enum": list(rs.DAYS)},
            "minItems": 1,
            "maxItems": len(rs.DAYS),
            "uniqueItems": True,
        },
        "time": {"type": "string", "pattern": rs.TIME_PATTERN, "description": "HH:MM, UTC"},
    }
)
_ALLOW_LIST: Schema = {
    "type": "array",
    "items": {"type": "string", "maxLength": rs.MAX_CIDR_LENGTH, "description": "a CIDR block"},
    "maxItems": rs.MAX_ALLOW_LIST,
    "uniqueItems": True,
    "description": "only clients in these networks reach the registry's v2 and token routes; "
    "empty: every client",
}
_FEATURES = {name: {"type": "boolean"} for name in rs.FEATURES}
_REGISTRY_WRITABLE: Schema = {
    "name": {"type": "string", "pattern": rs.NAME_PATTERN, "minLength": 3, "maxLength": 63},
    "location": {"type": "string", "enum": sorted(rs.LOCATIONS)},
    "garbageCollectionSchedule": _nullable(_ref("GarbageCollectionSchedule")),
    "apiSubnetAllowList": _ALLOW_LIST,
    "features": _object(_FEATURES, required=[]),
}
_SCOPE = _object(
    {
        "name": {
            "type": "string",
            "pattern": ti.SCOPE_NAME_PATTERN,
            "maxLength": ti.MAX_PATTERN_LENGTH,
            "description": "repository pattern: `*`, `team/*` or `team/app`; `catalog` for type registry",
        },
        "type": {"type": "string", "enum": list(ti.SCOPE_TYPES)},
        "actions": {
            "type": "array",
            "items": {"type": "string", "enum": list(ACTIONS)},
            "minItems": 1,
            "maxItems": len(ACTIONS),
        },
    }
)
_TOKEN_WRITABLE: Schema = {
    "name": {"type": "string", "pattern": ti.NAME_PATTERN},
    "scopes": {"type": "array", "items": _ref("Scope"), "minItems": 1, "maxItems": ti.MAX_SCOPES},
    "expiryDate": _nullable(
        {**_TIME, "description": "at least one hour ahead; null: the token never expires"}
    ),
    "status": {"type": "string", "enum": list(ti.STATUSES)},
    "oneTime": {"type": "boolean"},
}
_TOKEN_PROPERTIES: Schema = {
    "name": {"type": "string"},
    "scopes": {"type": "array", "items": _ref("Scope")},
    "expiryDate": _nullable(_TIME),
    "status": {"type": "string", "enum": list(ti.STATUSES)},
    "oneTime": {"type": "boolean"},
}
_TOKEN_METADATA = _object(
    {"createdAt": _TIME, "firstUsedAt": _nullable(_TIME), "consumedAt": _nullable(_TIME)}
)

SCHEMAS: dict[str, Schema] = {
    "Error": _object(
        {
            "httpStatus": {"type": "integer", "minimum": 400, "maximum": 599},
            "messages": {
                "type": "array",
                "minItems": 1,
                "items": _object(
                    {
                        "errorCode": {"type": "string", "enum": list(ERROR_CODES)},
                        "message": {"type": "string"},
                    }
                ),
            },
        }
    ),
    "GarbageCollectionSchedule": _SCHEDULE,
    "RegistryCreate": _object(_REGISTRY_WRITABLE, required=["name", "location"]),
    "RegistryPatch": _object(_REGISTRY_WRITABLE, required=[]),
    "Registry": _envelope(
        "registry",
        _object(
            {
                "name": {"type": "string"},
                "location": {"type": "string"},
                "garbageCollectionSchedule": _nullable(_ref("GarbageCollectionSchedule")),
                "apiSubnetAllowList": {"type": "array", "items": {"type": "string"}},
                "features": _object(_FEATURES),
                "hostname": {"type": "string"},
                "storageUsage": _object({"bytes": _COUNT}),
            }
        ),
    ),
    "RegistryList": _page("Registry", offset=True),
    "Location": _envelope(
        "location",
        _object({"name": {"type": "string"}, "description": {"type": "string"}}),
        _object({}),
    ),
    "LocationList": _page("Location", offset=True),
    "Scope": _SCOPE,
    "TokenCreate": _object(_TOKEN_WRITABLE, required=["name", "scopes"]),
    "TokenPatch": _object(_TOKEN_WRITABLE, required=[]),
    "Token": _envelope("token", _object(_TOKEN_PROPERTIES), _TOKEN_METADATA),
    "TokenCreated": _envelope(
        "token",
        _object(
            {
                **_TOKEN_PROPERTIES,
                "credentials": _object(
                    {
                        "username": {"type": "string"},
                        "password": {"type": "string", "description": "shown in this response only"},
                        "dockerLogin": {"type": "string"},
                    }
                ),
            }
        ),
        _TOKEN_METADATA,
    ),
    "TokenList": _page("Token", offset=True),
    "Repository": _envelope(
        "repository",
        _object(
            {
                "name": {"type": "string"},
                "artifactCount": _COUNT,
                "pullCount": _COUNT,
                "pushCount": _COUNT,
                "lastPulledAt": _nullable(_TIME),
                "lastPushedAt": _nullable(_TIME),
            }
        ),
    ),
    "RepositoryList": _page("Repository", offset=False),
    "Artifact": _envelope(
        "artifact",
        _object(
            {
                "digest": {"type": "string"},
                "mediaType": {"type": "string"},
                "artifactType": _nullable({"type": "string"}),
                "tags": {"type": "array", "items": {"type": "string"}},
                "size": {**_COUNT, "description": "the manifest and the blobs and manifests it references"},
            }
        ),
    ),
    "ArtifactList": _page("Artifact", offset=False),
    "AuditEntry": _envelope(
        "auditEntry",
        _object(
            {
                "actor": {"type": "string"},
                "action": {"type": "string"},
                "target": {"type": "string"},
                "address": _nullable({"type": "string"}),
                "detail": {"type": ["object", "null"]},
            }
        ),
    ),
    "AuditList": _page("AuditEntry", offset=False),
}

# parameters and responses ---------------------------------------------------------------------


def _path(name: str, schema: Schema, description: str = "") -> Schema:
    parameter = {"name": name, "in": "path", "required": True, "schema": schema}
    if description:
        parameter["description"] = description
    return parameter


def _query(name: str, schema: Schema) -> Schema:
    return {"name": name, "in": "query", "required": False, "schema": schema}


_LIMIT = _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT})
_OFFSET = [_LIMIT, _query("offset", {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0})]
_CURSOR = [_LIMIT, _query("cursor", {"type": "string", "description": "from the `next` link of a page"})]
_REGISTRY_ID = _path("id", {"type": "string", "pattern": _ID_PATTERN})
_TOKEN_ID = _path("tokenId", {"type": "string", "pattern": _ID_PATTERN})
# no pattern: the grammar is documented, and checked with a 400 that says what is wrong (a
# pattern this involved also makes schema-driven generators crawl)
_REPOSITORY = _path(
    "repository",
    {"type": "string", "minLength": 1, "maxLength": 255},
    "repository name (lowercase components of letters and digits, separated by `.`, `_`, `__` or "
    "dashes; components joined by `/`), with `/` sent as `%2F`",
)
_DIGEST = _path("digest", {"type": "string", "pattern": _DIGEST_PATTERN})

_ERROR_TEXT = {
    400: "invalid input; the messages say which field and why",
    401: "no or invalid account credentials",
    403: "registry token credentials (the management API takes account users only)",
    404: "not found, or another account's",
    409: "conflicts with the current state",
    413: "request body too large",
    415: "request body is not application/json",
    429: "too many failed logins from this address or for this user (see Retry-After)",
}


def _error(status: int) -> Schema:
    response: Schema = {
        "description": _ERROR_TEXT[status],
        "content": {"application/json": {"schema": _ref("Error")}},
    }
    if status == 401:
        response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}, "required": True}}
    if status == 429:
        response["headers"] = {"Retry-After": {"schema": {"type": "string"}, "required": True}}
    return response


def _ok(schema: str, description: str, status: int = 200) -> dict[str, Schema]:
    response: Schema = {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}
    if status == 201:
        response["headers"] = {"Location": {"schema": {"type": "string"}, "required": True}}
    return {str(status): response}


def _no_content(description: str) -> dict[str, Schema]:
    return {"204": {"description": description}}


def _operation(
    operation_id: str,
    summary: str,
    responses: dict[str, Schema],
    errors: tuple[int, ...],
    *,
    body: str | None = None,
    parameters: list[Schema] | None = None,
) -> Schema:
    all_errors = {401, 403, 429, *errors} | ({400, 413, 415} if body else set())
    operation: Schema = {
        "operationId": operation_id,
        "summary": summary,
        "responses": {**responses, **{str(s): _error(s) for s in sorted(all_errors)}},
    }
    if parameters:
        operation["parameters"] = parameters
    if body:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(body)}},
        }
    return operation


_R = "/api/registries/{id}"
_REPO = _R + "/repositories/{repository}"

PATHS: dict[str, Schema] = {
    "/api/openapi.json": {
        "get": {
            "operationId": "getOpenApi",
            "summary": "This document",
            "security": [],
            "responses": {
                "200": {"description": "the OpenAPI document", "content": {"application/json": {}}}
            },
        }
    },
    "/api/locations": {
        "get": _operation(
            "listLocations",
            "Where registries can be placed",
            _ok("LocationList", "locations"),
            (400,),
            parameters=_OFFSET,
        )
    },
    "/api/locations/{location}": {
        "parameters": [_path("location", {"type": "string"})],
        "get": _operation("getLocation", "A location", _ok("Location", "the location"), (404,)),
    },
    "/api/names/{name}": {
        "parameters": [_path("name", {"type": "string"})],
        "head": {
            "operationId": "checkName",
            "summary": "Whether a registry name is taken (names are global: each is a hostname)",
            "responses": {
                "200": {"description": "a registry has this name"},
                "400": {"description": "not a valid registry name"},
                "401": {"description": _ERROR_TEXT[401]},
                "403": {"description": _ERROR_TEXT[403]},
                "404": {"description": "the name is free"},
                "429": {"description": _ERROR_TEXT[429]},
            },
        },
    },
    "/api/registries": {
        "get": _operation(
            "listRegistries",
            "The account's registries",
            _ok("RegistryList", "registries, by name"),
            (400,),
            parameters=_OFFSET,
        ),
        "post": _operation(
            "createRegistry",
            "Create a registry, served at <name>.<domain>",
            _ok("Registry", "created", 201),
            (409,),
            body="RegistryCreate",
        ),
    },
    _R: {
        "parameters": [_REGISTRY_ID],
        "get": _operation("getRegistry", "A registry", _ok("Registry", "the registry"), (404,)),
        "patch": _operation(
            "patchRegistry",
            "Replace the properties given; keep the others",
            _ok("Registry", "the registry"),
            (404,),
            body="RegistryPatch",
        ),
        "put": _operation(
            "replaceRegistry",
            "Replace the registry's properties; those not given return to their defaults",
            _ok("Registry", "the registry"),
            (404,),
            body="RegistryCreate",
        ),
        "delete": _operation(
            "deleteRegistry",
            "Delete the registry and all its content and tokens",
            _no_content("deleted; its host stops serving within a second"),
            (404, 409),
        ),
    },
    _R + "/tokens": {
        "parameters": [_REGISTRY_ID],
        "get": _operation(
            "listTokens",
            "The registry's tokens",
            _ok("TokenList", "tokens, by name"),
            (400, 404),
            parameters=_OFFSET,
        ),
        "post": _operation(
            "createToken",
            "Create a token; its password is in this response only",
            _ok("TokenCreated", "created", 201),
            (404, 409),
            body="TokenCreate",
        ),
    },
    _R + "/tokens/{tokenId}": {
        "parameters": [_REGISTRY_ID, _TOKEN_ID],
        "get": _operation("getToken", "A token (never its password)", _ok("Token", "the token"), (404,)),
        "patch": _operation(
            "patchToken",
            "Change status, scopes or expiryDate (name and oneTime may be repeated, not changed)",
            _ok("Token", "the token"),
            (404,),
            body="TokenPatch",
        ),
        "put": _operation(
            "replaceToken",
            "Replace the token's settings; status enabled, no expiry unless given",
            _ok("Token", "the token"),
            (404,),
            body="TokenCreate",
        ),
        "delete": _operation("deleteToken", "Delete a token", _no_content("deleted"), (404,)),
    },
    _R + "/repositories": {
        "parameters": [_REGISTRY_ID],
        "get": _operation(
            "listRepositories",
            "Repositories with content, with pull and push counts",
            _ok("RepositoryList", "repositories, by name"),
            (400, 404),
            parameters=_CURSOR,
        ),
    },
    _REPO: {
        "parameters": [_REGISTRY_ID, _REPOSITORY],
        "get": _operation("getRepository", "A repository", _ok("Repository", "the repository"), (400, 404)),
        "delete": _operation(
            "deleteRepository",
            "Delete every manifest, tag and blob link of the repository",
            _no_content("deleted"),
            (400, 404),
        ),
    },
    _REPO + "/artifacts": {
        "parameters": [_REGISTRY_ID, _REPOSITORY],
        "get": _operation(
            "listArtifacts",
            "The repository's manifests, with their tags",
            _ok("ArtifactList", "artifacts, by digest"),
            (400, 404),
            parameters=_CURSOR,
        ),
    },
    _REPO + "/artifacts/{digest}": {
        "parameters": [_REGISTRY_ID, _REPOSITORY, _DIGEST],
        "get": _operation("getArtifact", "An artifact", _ok("Artifact", "the artifact"), (400, 404)),
    },
    "/api/audit": {
        "get": _operation(
            "listAuditEntries",
            "The account's management actions, newest first",
            _ok("AuditList", "entries"),
            (400,),
            parameters=_CURSOR,
        )
    },
    "/api/audit/{entryId}": {
        "parameters": [_path("entryId", {"type": "string", "pattern": "^[0-9]{1,18}$"})],
        "get": _operation("getAuditEntry", "An audit entry", _ok("AuditEntry", "the entry"), (404,)),
    },
}

DOCUMENT: Schema = {
    "openapi": "3.1.0",
    "info": {
        "title": "ocigate management API",
        "version": "1.0.0",
        "description": "Registries, their tokens, repositories and artifacts, and the audit trail of "
        "an account. Authenticate with an account user's username and password (HTTP Basic); "
        "registry tokens are refused. Another account's resources answer 404.",
    },
    "servers": [{"url": "/"}],
    "security": [{"basicAuth": []}],
    "paths": PATHS,
    "components": {
        "securitySchemes": {"basicAuth": {"type": "http", "scheme": "basic"}},
        "schemas": SCHEMAS,
    },
}

_BODY = orjson.dumps(DOCUMENT)


async def serve(services: Services, call: Call) -> web.Response:
    return web.Response(body=_BODY, content_type="application/json")
