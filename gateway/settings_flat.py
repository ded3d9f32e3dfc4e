"""Flat settings over a tree of sections: each leaf of the tree is one `OCIGATE_*` environment
variable and one flag of the same name, all parsed and validated in one go at start.

A section is a pydantic model. A leaf's flat name is the `env_prefix` of its sections, joined
down the tree, and its field name (or the field's alias, which is the whole flat name). What a
leaf means, whether it is a secret and what it allows stand on the field: `description`,
`SecretStr`, `Literal`, bounds and validators. An error names the variable and what it allows;
a secret's value is never shown. Sections' messages name their other fields in backticks
(`sse`); they are shown here as those fields' variables.

Why not pydantic-settings: it reads a nested field only as PREFIX_SECTION__FIELD (or from a
JSON value) and makes `--section.field` flags, while the names users have are flat
(OCIGATE_S3_SSE, --s3-sse) and the flags belong to several argparse subcommands.
"""

from __future__ import annotations

import argparse
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

ENV_PREFIX = "OCIGATE_"
Tree = typing.TypeVar("Tree", bound=BaseModel)
_FIELD_NAME = re.compile(r"`(\w+)`")


@dataclass(frozen=True)
class Leaf:
    path: tuple[str, ...]  # where it is in the tree, e.g. ("storage", "s3", "sse")
    name: str  # its flat name, e.g. "s3_sse"
    info: FieldInfo

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def secret(self) -> bool:
        return SecretStr in _members(self.info.annotation)

    @property
    def choices(self) -> tuple[str, ...]:
        literal = next(
            (t for t in _members(self.info.annotation) if typing.get_origin(t) is typing.Literal), None
        )
        return tuple(str(choice) for choice in typing.get_args(literal)) if literal else ()

    @property
    def meaning(self) -> str:
        text = self.info.description or ""
        if self.choices:
            text += f" (one of: {', '.join(self.choices)})"
        return text + ("; secret" if self.secret else "")

    @property
    def shown_default(self) -> str:
        default = self.info.get_default(call_default_factory=True)
        if default is None or default == ():
            return "unset"
        if isinstance(default, bool):
            return str(default).lower()
        if isinstance(default, Path) and not default.is_absolute():
            return f"./{default}"
        return str(default)


class SettingsError(Exception):
    """Settings that cannot work; one line per problem, each naming its variable."""


def leaves_of(section: type[BaseModel], prefix: str = "", path: tuple[str, ...] = ()) -> list[Leaf]:
    """The leaves of a tree of sections, depth first in declaration order."""
    prefix += getattr(section, "env_prefix", "")
    found: list[Leaf] = []
    for name, info in section.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found += leaves_of(annotation, prefix, (*path, name))
        else:
            found.append(Leaf((*path, name), info.alias or prefix + name, info))
    return found


def add_flags(parser: argparse.ArgumentParser, leaves: list[Leaf]) -> None:
    for leaf in leaves:
        text = f"{leaf.meaning} (env {leaf.env}, default {leaf.shown_default})"
        parser.add_argument(leaf.flag, dest=leaf.name, default=None, help=text.replace("%", "%%"))


def raw_values(
    leaves: list[Leaf], arguments: argparse.Namespace | None, environ: Mapping[str, str]
) -> dict[str, str]:
    """Each leaf's text: its flag's, else its variable's (an empty one counts as unset)."""
    values: dict[str, str] = {}
    for leaf in leaves:
        raw = getattr(arguments, leaf.name, None) if arguments is not None else None
        if raw is None:
            raw = environ.get(leaf.env)
        if raw:
            values[leaf.name] = raw
    return values


def parse(tree: type[Tree], leaves: list[Leaf], values: Mapping[str, str]) -> Tree:
    """The tree from flat texts (by leaf name), checked whole: every problem is reported."""
    nested: dict[str, typing.Any] = {}
    for leaf in leaves:
        if leaf.name in values:
            node = nested
            for key in leaf.path[:-1]:
                node = node.setdefault(key, {})
            node[leaf.path[-1]] = values[leaf.name]
    try:
        return tree.model_validate(nested)
    except ValidationError as exc:
        raise SettingsError("\n".join(_describe(error, leaves) for error in exc.errors())) from None


def table(leaves: list[Leaf]) -> str:
    """The README's settings table."""
    rows = ["| variable | flag | default | meaning |", "|---|---|---|---|"]
    rows += [f"| `{x.env}` | `{x.flag}` | `{x.shown_default}` | {x.meaning} |" for x in leaves]
    return "\n".join(rows) + "\n"


def _describe(error: ErrorDetails, leaves: list[Leaf]) -> str:
    loc = tuple(str(part) for part in error["loc"])
    leaf = next((x for x in leaves if loc[: len(x.path)] == x.path), None)
    section = leaf.path[:-1] if leaf is not None else loc
    message = _FIELD_NAME.sub(lambda match: _name_in(section, match[1], leaves), _problem(error, leaf))
    if leaf is None:  # about several fields of a section, which it names
        return message
    shown = "" if leaf.secret else f" (got {error['input']!r})"
    return f"{leaf.env} {message}{shown}"


def _problem(error: ErrorDetails, leaf: Leaf | None) -> str:
    kind, context = error["type"], error.get("ctx", {})
    if kind == "literal_error" and leaf is not None:
        return "must be one of " + ", ".join(leaf.choices)
    if kind == "value_error":
        return str(context["error"])
    if kind in ("int_parsing", "int_from_float"):
        return "must be a whole number"
    if kind == "float_parsing":
        return "must be a number"
    if kind == "bool_parsing":
        return "must be true or false (or 1/0, yes/no, on/off)"
    bounds = {"greater_than_equal": "at least", "greater_than": "more than", "less_than_equal": "at most"}
    if kind in bounds:
        return f"must be {bounds[kind]} {next(iter(context.values()))}"
    return error["msg"][:1].lower() + error["msg"][1:]


def _name_in(section: tuple[str, ...], field: str, leaves: list[Leaf]) -> str:
    found = next((x for x in leaves if x.path == (*section, field)), None)
    return found.env if found is not None else field


def _members(annotation: object) -> tuple[object, ...]:
    """`X | None` → (X, NoneType); anything else → (itself,)."""
    args = typing.get_args(annotation)
    return args if typing.get_origin(annotation) in (typing.Union, types.UnionType) else (annotation,)
