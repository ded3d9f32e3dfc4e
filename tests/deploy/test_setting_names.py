"""Every OCIGATE_* name the deploy files, the README and docs/ use is a setting (or one planned)."""

from __future__ import annotations

import re
from pathlib import Path

from ocigate.gateway.settings import LEAVES

ROOT = Path(__file__).resolve().parents[2]
PLANNED: set[str] = set()  # names the deploy files use ahead of the code (none now)
NAME = re.compile(r"\bOCIGATE_[A-Z0-9_]+\*?")  # `OCIGATE_S3_*` names a group


def known(name: str, names: set[str]) -> bool:
    if name.endswith("*"):
        return any(known_name.startswith(name[:-1]) for known_name in names)
    return name in names


def test_deploy_files_and_the_readme_name_only_settings() -> None:
    names = {leaf.env for leaf in LEAVES} | PLANNED
    files = [ROOT / "README.md"]
    files += [path for folder in ("deploy", "docs") for path in (ROOT / folder).rglob("*") if path.is_file()]
    assert len(files) > 5
    unknown = sorted(
        f"{path.relative_to(ROOT)}: {name}"
        for path in files
        for name in set(NAME.findall(path.read_text()))
        if not known(name, names)
    )
    assert unknown == []
