"""Every OCIGATE_* name the deploy files and the README use is a setting (or one planned)."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from ocigate.gateway.settings import Settings, env_name

ROOT = Path(__file__).resolve().parents[2]
# issue 13: TLS (part 1) and the graceful drain (part 3) add these; the deploy files use them now
PLANNED = {"OCIGATE_TLS_CERT", "OCIGATE_TLS_KEY", "OCIGATE_DRAIN_DELAY", "OCIGATE_DRAIN_TIMEOUT"}
# what the README tells a developer to set for a longer schemathesis run (tests/management/)
TEST_KNOBS = {"OCIGATE_SCHEMATHESIS_SEED", "OCIGATE_SCHEMATHESIS_EXAMPLES"}
NAME = re.compile(r"\bOCIGATE_[A-Z0-9_]+\*?")  # `OCIGATE_S3_*` names a group


def known(name: str, names: set[str]) -> bool:
    if name.endswith("*"):
        return any(known_name.startswith(name[:-1]) for known_name in names)
    return name in names


def test_deploy_files_and_the_readme_name_only_settings() -> None:
    names = {env_name(setting.name) for setting in fields(Settings)} | PLANNED | TEST_KNOBS
    files = [ROOT / "README.md", *(path for path in (ROOT / "deploy").rglob("*") if path.is_file())]
    assert len(files) > 5
    unknown = sorted(
        f"{path.relative_to(ROOT)}: {name}"
        for path in files
        for name in set(NAME.findall(path.read_text()))
        if not known(name, names)
    )
    assert unknown == []
