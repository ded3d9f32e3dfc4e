"""Reading token bodies: name, scopes, expiryDate, status, oneTime."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from ocigate.auth.admin import InvalidRequest, parse_grants, validate_expiry
from ocigate.auth.scopes import ACTIONS, CATALOG, REGISTRY, REPOSITORY, Grant
from ocigate.auth.store import DISABLED, ENABLED

from .errors import invalid
from .validation import Fields, check_text

WRITABLE = ("name", "scopes", "expiryDate", "status", "oneTime")
NAME_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
NAME_RE = re.compile(NAME_PATTERN[1:-1])
SCOPE_NAME_PATTERN = r"^(\*|[a-z0-9][a-z0-9._/-]*(/\*)?)$"
STATUSES = (ENABLED, DISABLED)
SCOPE_TYPES = (REPOSITORY, REGISTRY)
MAX_SCOPES = 50
MAX_PATTERN_LENGTH = 255
_EXPIRY_HINT = "expiryDate must be an ISO 8601 date and time with a time zone, e.g. 2030-01-31T12:00:00Z"


def token_name(fields: Fields) -> str:
    return fields.text("name", pattern=NAME_RE, hint="1-64 letters, digits, '.', '_' or '-'")


def scopes(fields: Fields) -> tuple[Grant, ...]:
    where = fields.path("scopes")
    entries = fields.array("scopes", min_items=1, max_items=MAX_SCOPES)
    checked: list[dict[str, object]] = []
    for index, entry in enumerate(entries):
        scope = Fields(entry, f"{where}[{index}]", ("name", "type", "actions"), ("name", "type", "actions"))
        kind = scope.text("type", choices=SCOPE_TYPES)
        name = scope.text("name", max_length=MAX_PATTERN_LENGTH)
        if kind == REGISTRY and name != CATALOG:
            raise invalid(f"{scope.path('name')} must be 'catalog' for a scope of type registry")
        actions = scope.array("actions", min_items=1, max_items=len(ACTIONS))
        for position, action in enumerate(actions):
            check_text(action, f"{scope.path('actions')}[{position}]", choices=ACTIONS)
        checked.append({"type": kind, "name": name, "actions": actions})
    try:
        return parse_grants(checked)
    except InvalidRequest as exc:
        raise invalid(f"{where}: {exc}") from None


def scope_json(grant: Grant) -> dict[str, object]:
    """A grant as the API shows it. A registry grant (the catalog) is stored as `*` and shown as
    the `pull` it amounts to, so that responses use the same actions as requests."""
    if grant.type == REGISTRY:
        return {"name": CATALOG, "type": REGISTRY, "actions": ["pull"]}
    return {"name": grant.pattern, "type": grant.type, "actions": [a for a in ACTIONS if a in grant.actions]}


def expiry(fields: Fields) -> int | None:
    """expiryDate in ms, None for a token that never expires (`null`)."""
    if fields.is_null("expiryDate"):
        return None
    text = fields.text("expiryDate", max_length=64)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise invalid(f"{_EXPIRY_HINT}, not {text!r}") from None
    if moment.tzinfo is None:
        raise invalid(_EXPIRY_HINT)
    try:
        # in UTC first: a moment past year 9999 there could be stored but never shown
        expires_at = int(moment.astimezone(UTC).timestamp() * 1000)
    except (OverflowError, ValueError):
        raise invalid(_EXPIRY_HINT) from None
    try:
        validate_expiry(expires_at)
    except InvalidRequest as exc:
        raise invalid(str(exc)) from None
    return expires_at


def status(fields: Fields) -> str:
    return fields.text("status", choices=STATUSES)
