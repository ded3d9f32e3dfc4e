"""The management API's route table, and the OpenAPI document generated from it.

An operation names its handler, its answer and the errors only it can give; what it takes
comes from the handler's own signature (`body: RegistryCreate`, `query: OffsetQuery`), so the
dispatcher (`api.py`) and the document (`openapi.py`) cannot disagree about it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, get_type_hints

import orjson
from aiohttp import web
from pydantic import Field

from . import artifacts, audit, openapi, registries, repositories, sessions, tokens
from .content_models import Artifact, ArtifactList, AuditEntry, AuditList, Repository, RepositoryList
from .context import Call, Services
from .model import Body, Query
from .registry_models import Location, LocationList, Registry, RegistryList, RegistryName
from .session_models import Session
from .token_models import Token, TokenCreated, TokenList

Handler = Callable[..., Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Reply:
    """The success answer: its status, and what its body holds (a model, or none)."""

    status: int
    description: str
    model: Any = None


def ok(model: Any, description: str) -> Reply:
    return Reply(200, description, model)


@dataclass(frozen=True, slots=True)
class Operation:
    handler: Handler
    operation_id: str
    summary: str
    reply: Reply
    # statuses beyond those of credentials, input and path lookups (`openapi.py`), with their
    # meaning here ("": the usual one)
    errors: Mapping[int, str] = field(default_factory=dict)
    public: bool = False  # answered without credentials
    body: type[Body] | None = field(init=False)
    query: type[Query] | None = field(init=False)

    def __post_init__(self) -> None:
        takes = get_type_hints(self.handler)
        object.__setattr__(self, "body", takes.get("body"))
        object.__setattr__(self, "query", takes.get("query"))


@dataclass(frozen=True, slots=True)
class Route:
    template: str
    operations: Mapping[str, Operation]
    pattern: re.Pattern[str] = field(init=False)
    parameter_names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.template)
        object.__setattr__(self, "pattern", re.compile(regex))
        object.__setattr__(self, "parameter_names", tuple(re.findall(r"\{(\w+)\}", self.template)))


@dataclass(frozen=True, slots=True)
class PathParameter:
    schema: Any
    description: str = ""
    malformed: int = 404  # the answer to a value that names nothing; 400: refused as input


_ID = Annotated[str, Field(pattern="^[0-9a-f]{32}$")]
PATH_PARAMETERS: dict[str, PathParameter] = {
    "id": PathParameter(_ID),
    "tokenId": PathParameter(_ID),
    "location": PathParameter(str),
    "name": PathParameter(RegistryName, malformed=400),
    # no pattern: the grammar is documented, and checked with a 400 that says what is wrong (a
    # pattern this involved also makes schema-driven generators crawl)
    "repository": PathParameter(
        Annotated[str, Field(min_length=1, max_length=255)],
        "repository name (lowercase components of letters and digits, separated by `.`, `_`, `__` "
        "or dashes; components joined by `/`), with `/` sent as `%2F`",
        malformed=400,
    ),
    "digest": PathParameter(
        Annotated[str, Field(pattern=r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")], malformed=400
    ),
    "entryId": PathParameter(Annotated[str, Field(pattern="^[0-9]{1,18}$")]),
    "tag": PathParameter(Annotated[str, Field(pattern=r"^\w[\w.-]{0,127}$")], malformed=400),
}


async def serve_document(services: Services, call: Call) -> web.Response:
    return web.Response(body=_DOCUMENT_JSON, content_type="application/json")


CONFLICT = {409: ""}
REGISTRY = "/api/registries/{id}"
REPOSITORY = REGISTRY + "/repositories/{repository}"

ROUTES: tuple[Route, ...] = (
    Route(
        "/api/openapi.json",
        {
            "GET": Operation(
                serve_document,
                "getOpenApi",
                "This document",
                ok(dict[str, Any], "the OpenAPI document"),
                public=True,
            )
        },
    ),
    Route(
        "/api/locations",
        {
            "GET": Operation(
                registries.list_locations,
                "listLocations",
                "Where registries can be placed",
                ok(LocationList, "locations"),
            )
        },
    ),
    Route(
        "/api/locations/{location}",
        {
            "GET": Operation(
                registries.get_location, "getLocation", "A location", ok(Location, "the location")
            )
        },
    ),
    Route(
        "/api/names/{name}",
        {
            "HEAD": Operation(
                registries.name_in_use,
                "checkName",
                "Whether a registry name is taken (names are global: each is a hostname)",
                Reply(200, "a registry has this name"),
                {400: "not a valid registry name", 404: "the name is free"},
            )
        },
    ),
    Route(
        "/api/registries",
        {
            "GET": Operation(
                registries.list_registries,
                "listRegistries",
                "The account's registries",
                ok(RegistryList, "registries, by name"),
            ),
            "POST": Operation(
                registries.create,
                "createRegistry",
                "Create a registry, served at <name>.<domain>",
                Reply(201, "created", Registry),
                CONFLICT,
            ),
        },
    ),
    Route(
        REGISTRY,
        {
            "GET": Operation(registries.get, "getRegistry", "A registry", ok(Registry, "the registry")),
            "PATCH": Operation(
                registries.patch,
                "patchRegistry",
                "Replace the properties given; keep the others",
                ok(Registry, "the registry"),
            ),
            "PUT": Operation(
                registries.replace,
                "replaceRegistry",
                "Replace the registry's properties; those not given return to their defaults",
                ok(Registry, "the registry"),
            ),
            "DELETE": Operation(
                registries.delete,
                "deleteRegistry",
                "Delete the registry and all its content and tokens",
                Reply(204, "deleted; its host stops serving within a second"),
                CONFLICT,
            ),
        },
    ),
    Route(
        REGISTRY + "/tokens",
        {
            "GET": Operation(
                tokens.list_tokens, "listTokens", "The registry's tokens", ok(TokenList, "tokens, by name")
            ),
            "POST": Operation(
                tokens.create,
                "createToken",
                "Create a token; its password is in this response only",
                Reply(201, "created", TokenCreated),
                CONFLICT,
            ),
        },
    ),
    Route(
        REGISTRY + "/tokens/{tokenId}",
        {
            "GET": Operation(tokens.get, "getToken", "A token (never its password)", ok(Token, "the token")),
            "PATCH": Operation(
                tokens.patch,
                "patchToken",
                "Change status, scopes or expiryDate (name and oneTime may be repeated, not changed)",
                ok(Token, "the token"),
            ),
            "PUT": Operation(
                tokens.replace,
                "replaceToken",
                "Replace the token's settings; status enabled, no expiry unless given",
                ok(Token, "the token"),
            ),
            "DELETE": Operation(tokens.delete, "deleteToken", "Delete a token", Reply(204, "deleted")),
        },
    ),
    Route(
        REGISTRY + "/repositories",
        {
            "GET": Operation(
                repositories.list_repositories,
                "listRepositories",
                "Repositories with content, with pull and push counts",
                ok(RepositoryList, "repositories, by name"),
            )
        },
    ),
    Route(
        REPOSITORY,
        {
            "GET": Operation(
                repositories.get_repository, "getRepository", "A repository", ok(Repository, "the repository")
            ),
            "DELETE": Operation(
                repositories.delete_repository,
                "deleteRepository",
                "Delete every manifest, tag and blob link of the repository",
                Reply(204, "deleted"),
            ),
        },
    ),
    Route(
        REPOSITORY + "/artifacts",
        {
            "GET": Operation(
                artifacts.list_artifacts,
                "listArtifacts",
                "The repository's manifests, tagged or not, with their tags, kind and referrers",
                ok(ArtifactList, "artifacts, by digest"),
            )
        },
    ),
    Route(
        REPOSITORY + "/artifacts/{digest}",
        {
            "GET": Operation(
                artifacts.get_artifact, "getArtifact", "An artifact", ok(Artifact, "the artifact")
            ),
            "DELETE": Operation(
                artifacts.delete_artifact,
                "deleteArtifact",
                "Delete a manifest and the tags on it (blobs stay for garbage collection)",
                Reply(204, "deleted"),
            ),
        },
    ),
    Route(
        REPOSITORY + "/tags/{tag}",
        {
            "DELETE": Operation(
                artifacts.delete_tag,
                "deleteTag",
                "Delete a tag (the manifest it pointed at stays, untagged)",
                Reply(204, "deleted"),
            )
        },
    ),
    Route(
        "/api/sessions",
        {
            "POST": Operation(
                sessions.sign_in,
                "signIn",
                "Sign in to the web console: the session id comes in an HttpOnly cookie, the CSRF "
                "token that changes need (X-CSRF-Token) in the body",
                Reply(201, "signed in", Session),
                {
                    401: "wrong username or password",
                    403: "registry token credentials, a request from another origin, or from outside the "
                    "subnet allow list of the registry whose hostname it came to",
                    409: "authentication is off (OCIGATE_AUTH=none)",
                    429: "",
                },
                public=True,
            )
        },
    ),
    Route(
        "/api/sessions/current",
        {
            "GET": Operation(
                sessions.get_current,
                "getSession",
                "The console session this request came with, and its CSRF token",
                ok(Session, "the session"),
                {404: "the request came without a console session (e.g. with HTTP Basic)"},
            ),
            "DELETE": Operation(
                sessions.sign_out,
                "signOut",
                "Sign out: end the console session this request came with",
                Reply(204, "signed out; the cookie is cleared"),
                {404: "the request came without a console session (e.g. with HTTP Basic)"},
            ),
        },
    ),
    Route(
        "/api/audit",
        {
            "GET": Operation(
                audit.list_entries,
                "listAuditEntries",
                "The account's management actions, newest first; filtered by actor, action and time",
                ok(AuditList, "entries"),
            )
        },
    ),
    Route(
        "/api/audit/{entryId}",
        {"GET": Operation(audit.get_entry, "getAuditEntry", "An audit entry", ok(AuditEntry, "the entry"))},
    ),
)

DOCUMENT = openapi.build(ROUTES, PATH_PARAMETERS)
_DOCUMENT_JSON = orjson.dumps(DOCUMENT)
