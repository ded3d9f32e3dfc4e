"""The four folders install as one package, `ocigate`, and live beside distributions that own
the generic names (`auth` on PyPI among them)."""

from __future__ import annotations

import ast
import os
import site
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("auth", "gateway", "limiter", "storage")


def _run(*argv: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(arg) for arg in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, f"{argv} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_every_folder_of_the_package_is_declared() -> None:
    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        "ocigate." + ".".join(init.parent.relative_to(ROOT).parts)
        for folder in FOLDERS
        for init in (ROOT / folder).rglob("__init__.py")
    }
    assert declared == found


def test_nothing_imports_the_folders_by_their_bare_names() -> None:
    """Imported as `storage` from the repository root, a module would load a second time beside
    `ocigate.storage` (two registries of app keys, two caches)."""
    offenders = []
    for path in ROOT.glob("*/**/*.py"):
        if path.parts[len(ROOT.parts)] in (".venv", "build", "data"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path}:{node.lineno} {n}" for n in names if n.split(".")[0] in FOLDERS]
    assert offenders == []


def _dist_named_auth(where: Path) -> Path:
    """A distribution `auth` with a top-level module `auth`, as the PyPI one has."""
    (where / "auth").mkdir(parents=True)
    (where / "auth" / "__init__.py").write_text("OWNER = 'other-auth'\n")
    (where / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "auth"\nversion = "1.0"\n[tool.setuptools]\npackages = ["auth"]\n'
    )
    return where


def test_the_wheel_installs_beside_a_package_named_auth(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    for source in (ROOT, _dist_named_auth(tmp_path / "other")):
        _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", wheels, source, cwd=tmp_path)
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    pip = [python, "-m", "pip", "--disable-pip-version-check"]
    _run(*pip, "install", "-q", "--no-deps", "--no-index", *sorted(wheels.iterdir()))
    # ocigate's dependencies come from the project's venv; `.pth` files (its editable install)
    # are not read from PYTHONPATH, so only the fresh venv can provide `ocigate`
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(site.getsitepackages())}
    probe = (
        "import auth, ocigate.auth.scopes, ocigate.storage.metadata.engine as e; "
        "print(auth.OWNER, e.__file__, len(e._migration_scripts()))"
    )
    owner, engine_file, migrations = _run(python, "-c", probe, cwd=tmp_path, env=env).split()
    assert owner == "other-auth"
    assert Path(engine_file).is_relative_to(env_dir)
    assert int(migrations) == len(list((ROOT / "storage" / "metadata" / "migrations").glob("*.sql")))
    assert "serve" in _run(env_dir / "bin" / "ocigate", "--help", cwd=tmp_path, env=env)
    # removing one leaves the other whole
    _run(*pip, "uninstall", "-q", "-y", "auth")
    _run(python, "-c", "import ocigate.auth.service, ocigate.gateway.app", cwd=tmp_path, env=env)
    installed = _run(*pip, "show", "-f", "ocigate")
    assert "ocigate/auth/service.py" in installed
    # the web console's files ship in the wheel and are what the installed package serves
    console = ROOT / "gateway" / "console" / "static"
    shipped = sorted(path.relative_to(console).as_posix() for path in console.rglob("*") if path.is_file())
    assert len(shipped) > 8
    for name in shipped:
        assert f"ocigate/gateway/console/static/{name}" in installed, name
    probe = "from ocigate.gateway.console import ConsoleFiles; print(sorted(ConsoleFiles().assets))"
    served = _run(python, "-c", probe, cwd=tmp_path, env=env)
    assert served.strip() == str([name for name in shipped if name != "index.html"])
