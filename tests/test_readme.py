"""The README's settings table and commands stay in step with the code."""

from __future__ import annotations

from pathlib import Path

from ocigate.gateway.settings import settings_table

ROOT = Path(__file__).resolve().parent.parent


def test_the_readme_settings_table_is_the_generated_one() -> None:
    """Regenerate it with `.venv/bin/python -m ocigate.gateway.settings`."""
    readme = (ROOT / "README.md").read_text()
    assert settings_table() in readme


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash tests/run" in readme
    assert "bash tests/run" in ci
    assert "bash deploy/install.sh && .venv/bin/ocigate serve" in readme
