"""The README's settings table and commands stay in step with the code."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from ocigate.gateway.settings import Settings, env_name

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_in_the_readme_table() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [env_name(f.name) for f in fields(Settings) if f"`{env_name(f.name)}`" not in readme]
    assert missing == []


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash tests/run" in readme
    assert "bash tests/run" in ci
    assert "bash deploy/install.sh && .venv/bin/ocigate serve" in readme
