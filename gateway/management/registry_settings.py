"""A registry's settings: location, garbage-collection schedule, subnet allow list, features.

Stored as the registry's `properties` JSON (`storage.metadata.RegistryRecord.properties`); the
v2 and token routes read `apiSubnetAllowList` from there (`gateway/subnets.py`). The schedule
and the features are stored for later issues (garbage collection, scanning) and do nothing yet.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace
from typing import Any

import orjson

from .errors import invalid
from .validation import Fields, check_text

NAME_PATTERN = r"^[a-z][-a-z0-9]{1,61}[a-z0-9]$"
NAME_RE = re.compile(NAME_PATTERN[1:-1])
NAME_HINT = "3-63 characters: lowercase letters, digits and '-', starting with a letter, not ending with '-'"

LOCATIONS: dict[str, str] = {"local": "this deployment's own blob and metadata stores"}
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
_TIME_RE = re.compile(TIME_PATTERN[1:-1])
MAX_ALLOW_LIST = 25
MAX_CIDR_LENGTH = 49  # an IPv6 address with a prefix, written out in full
FEATURES = ("vulnerabilityScanning",)

WRITABLE = ("location", "garbageCollectionSchedule", "apiSubnetAllowList", "features")


@dataclass(frozen=True, slots=True)
class GcSchedule:
    days: tuple[str, ...]
    time: str  # HH:MM, UTC


@dataclass(frozen=True, slots=True)
class RegistrySettings:
    location: str = "local"
    gc_schedule: GcSchedule | None = None
    allow_list: tuple[str, ...] = ()  # CIDRs; empty: every address may connect
    features: tuple[tuple[str, bool], ...] = tuple((name, False) for name in FEATURES)

    @classmethod
    def from_json(cls, text: str) -> RegistrySettings:
        stored: dict[str, Any] = orjson.loads(text or "{}")
        schedule = stored.get("garbageCollectionSchedule")
        features = stored.get("features") or {}
        return cls(
            location=stored.get("location", "local"),
            gc_schedule=GcSchedule(tuple(schedule["days"]), schedule["time"]) if schedule else None,
            allow_list=tuple(stored.get("apiSubnetAllowList") or ()),
            features=tuple((name, bool(features.get(name, False))) for name in FEATURES),
        )

    def as_json(self) -> dict[str, Any]:
        """The writable properties, as stored and as the API shows them."""
        schedule = self.gc_schedule
        return {
            "location": self.location,
            "garbageCollectionSchedule": (
                {"days": list(schedule.days), "time": schedule.time} if schedule else None
            ),
            "apiSubnetAllowList": list(self.allow_list),
            "features": dict(self.features),
        }

    def to_json(self) -> str:
        return orjson.dumps(self.as_json()).decode()


def check_name(fields: Fields) -> str:
    return fields.text("name", pattern=NAME_RE, hint=NAME_HINT)


def parse_settings(fields: Fields, base: RegistrySettings) -> RegistrySettings:
    """`base` with each writable property that `fields` holds replaced as a whole."""
    settings = base
    if "location" in fields:
        settings = replace(settings, location=fields.text("location", choices=tuple(LOCATIONS)))
    if "garbageCollectionSchedule" in fields:
        settings = replace(settings, gc_schedule=_schedule(fields))
    if "apiSubnetAllowList" in fields:
        settings = replace(settings, allow_list=_allow_list(fields))
    if "features" in fields:
        features = fields.child("features", FEATURES)
        settings = replace(
            settings,
            features=tuple((name, features.flag(name) if name in features else False) for name in FEATURES),
        )
    return settings


def _schedule(fields: Fields) -> GcSchedule | None:
    if fields.is_null("garbageCollectionSchedule"):
        return None
    schedule = fields.child("garbageCollectionSchedule", ("days", "time"), ("days", "time"))
    days = schedule.array("days", min_items=1, max_items=len(DAYS))
    for index, day in enumerate(days):
        check_text(day, f"{schedule.path('days')}[{index}]", choices=DAYS)
    if len(set(days)) != len(days):
        raise invalid(f"{schedule.path('days')} lists a day twice")
    time = schedule.text("time", pattern=_TIME_RE, hint="expected HH:MM (UTC), 00:00 to 23:59")
    return GcSchedule(tuple(sorted(days, key=DAYS.index)), time)  # type: ignore[arg-type]


def _allow_list(fields: Fields) -> tuple[str, ...]:
    where = fields.path("apiSubnetAllowList")
    entries = fields.array("apiSubnetAllowList", max_items=MAX_ALLOW_LIST)
    networks: list[str] = []
    for index, entry in enumerate(entries):
        text = check_text(entry, f"{where}[{index}]", max_length=MAX_CIDR_LENGTH)
        try:
            network = ipaddress.ip_network(text, strict=True)
        except ValueError as exc:
            # strict: `10.0.0.1/8` is more likely a typo than a wish for 10.0.0.0/8
            raise invalid(f"{where}[{index}] {text!r} is not a CIDR block: {exc}") from None
        if str(network) in networks:
            raise invalid(f"{where}[{index}] {text!r} is listed twice")
        networks.append(str(network))
    return tuple(networks)
