"""Registries and locations: the bodies a request sends, the settings stored, the resources shown.

A registry's writable settings are stored as its `properties` JSON (`RegistrySettings`, in the
API's own shape); the v2 and token routes read `apiSubnetAllowList` from there
(`gateway/subnets.py`), the gateway's scheduler `garbageCollectionSchedule` and
`deleteUntaggedManifests` (`gateway/gc.py`). The features are stored for a later issue
(scanning) and do nothing yet.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, ConfigDict, Field, field_validator

from .envelope import Created, Envelope
from .errors import invalid
from .model import Body, Matches, Resource, Timestamp, Unique, absent, rule, without_defaults
from .pagination import OffsetPage

NAME_PATTERN = r"^[a-z][-a-z0-9]{1,61}[a-z0-9]$"
NAME_HINT = "3-63 characters: lowercase letters, digits and '-', starting with a letter, not ending with '-'"
RegistryName = Annotated[str, Matches(NAME_PATTERN, NAME_HINT)]

LocationName = Literal["local"]
LOCATIONS: dict[str, str] = {"local": "this deployment's own blob and metadata stores"}
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[str, ...] = get_args(Day)
TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
MAX_ALLOW_LIST = 25
MAX_CIDR_LENGTH = 49  # an IPv6 address with a prefix, written out in full


def _network(text: str) -> str:
    try:
        # strict: `10.0.0.1/8` is more likely a typo than a wish for 10.0.0.0/8
        return str(ipaddress.ip_network(text, strict=True))
    except ValueError as exc:
        raise rule(f"{text!r} is not a CIDR block: {exc}") from None


Cidr = Annotated[str, Field(max_length=MAX_CIDR_LENGTH, description="a CIDR block"), AfterValidator(_network)]


class GarbageCollectionSchedule(Body):
    days: Annotated[list[Day], Field(min_length=1, max_length=len(DAYS)), Unique()]
    time: Annotated[
        str, Matches(TIME_PATTERN, "expected HH:MM (UTC), 00:00 to 23:59"), Field(description="HH:MM, UTC")
    ]

    @field_validator("days")
    @classmethod
    def _in_week_order(cls, days: list[str]) -> list[str]:
        return sorted(days, key=DAYS.index)


class Features(Body):
    # one schema for requests and responses: a feature left out of a request is off
    model_config = ConfigDict(json_schema_mode_override="validation")
    vulnerability_scanning: bool = False


class RegistrySettings(Body):
    """A registry's writable properties, as stored and as the API shows them."""

    location: LocationName = "local"
    garbage_collection_schedule: GarbageCollectionSchedule | None = None
    delete_untagged_manifests: bool = Field(
        False,
        description="garbage collection also removes manifests no tag names, no index lists and "
        "that refer to no subject still present (a referrer goes with its subject)",
    )
    storage_quota_bytes: int | None = Field(
        None,
        ge=1,
        description="pushes that would store more than this many bytes (blobs, each counted once) are "
        "refused with 403 DENIED; none if null",
    )
    api_subnet_allow_list: Annotated[
        list[Cidr],
        Field(
            max_length=MAX_ALLOW_LIST,
            description="only clients in these networks reach the registry's v2 and token routes; "
            "empty: every client",
        ),
        Unique(),
    ] = Field(default_factory=list)
    features: Features = Field(default_factory=Features)

    @classmethod
    @functools.lru_cache(maxsize=1024)
    def stored(cls, text: str) -> RegistrySettings:
        # every rendering of a registry reads its settings, and checking the CIDRs again costs
        # more than the rest of it: a stored text is parsed once (the models are frozen)
        return cls.model_validate_json(text or "{}")

    def to_json(self) -> str:
        return self.model_dump_json()


class RegistryPatch(RegistrySettings):
    """The properties given replace the stored ones; the others stay as they are."""

    model_config = ConfigDict(json_schema_extra=without_defaults)
    name: RegistryName = absent()  # may be repeated, not changed

    def applied_to(self, base: RegistrySettings) -> RegistrySettings:
        given = self.model_fields_set & set(RegistrySettings.model_fields)
        return base.model_copy(update={name: getattr(self, name) for name in given})

    def check_name(self, current: str) -> None:
        if self.name is not None and self.name != current:
            raise invalid("name cannot be changed: it is the registry's hostname")


class RegistryCreate(RegistryPatch):
    """POST and PUT: properties not given take their defaults."""

    model_config = ConfigDict(json_schema_extra=None)
    name: RegistryName
    location: LocationName


_NAME_RE = re.compile(NAME_PATTERN)


def is_registry_name(text: str) -> bool:
    """The rule of `RegistryCreate.name`, for `HEAD /api/names/{name}`."""
    return _NAME_RE.fullmatch(text) is not None


class StorageUsage(Resource):
    bytes: int = Field(ge=0)


class GarbageCollectionRun(Resource):
    """The registry's last collection (scheduled or `ocigate gc`): blobs and bytes are what the
    global sweep that followed it freed."""

    started_at: Timestamp
    finished_at: Timestamp
    manifests: int = Field(ge=0, description="untagged manifests removed")
    links: int = Field(ge=0, description="blob links removed from repositories")
    blobs: int = Field(ge=0, description="blobs deleted from the store")
    bytes: int = Field(ge=0, description="bytes freed in the store")


class RegistryProperties(Resource):
    name: str
    location: str
    garbage_collection_schedule: GarbageCollectionSchedule | None
    delete_untagged_manifests: bool
    storage_quota_bytes: int | None
    api_subnet_allow_list: list[str]
    features: Features
    hostname: str
    storage_usage: StorageUsage
    repository_count: int = Field(ge=0, description="repositories with content")
    last_garbage_collection: GarbageCollectionRun | None


class Registry(Envelope):
    type: Literal["registry"] = "registry"
    metadata: Created
    properties: RegistryProperties


class LocationProperties(Resource):
    name: str
    description: str


class NoMetadata(Resource):
    pass


class Location(Envelope):
    type: Literal["location"] = "location"
    metadata: NoMetadata = Field(default_factory=NoMetadata)
    properties: LocationProperties


class RegistryList(OffsetPage[Registry]):
    pass


class LocationList(OffsetPage[Location]):
    pass
