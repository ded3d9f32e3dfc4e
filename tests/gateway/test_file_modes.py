"""Everything ocigate keeps in its data dir is its own: directories 0700, files 0600 (the
metadata database and its -wal/-shm, keys, blobs, staged uploads), whatever the umask; an
older data dir left open is tightened at start."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.registry_client import RegistryClient
from tests.servers import Gateway, ocigate


@contextmanager
def umask(mask: int) -> Iterator[None]:
    """The processes started meanwhile inherit `mask`."""
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def modes(root: Path) -> dict[str, str]:
    """Every path under `root` (itself included) with its permission bits, as octal text."""
    found = {".": oct(stat.S_IMODE(root.stat().st_mode))}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = oct(stat.S_IMODE(path.lstat().st_mode))
    return found


def wrong_modes(root: Path) -> dict[str, str]:
    return {
        name: mode
        for name, mode in modes(root).items()
        if mode != ("0o700" if (root / name).is_dir() else "0o600")
    }


def test_every_file_in_the_data_dir_is_private_whatever_the_umask(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with umask(0o002):  # as open as anyone would set it
        ocigate("registry", "create", "modes", data_dir=data_dir)
        gateway = Gateway(data_dir).start()
    try:
        client = RegistryClient(gateway.url)
        client.push_image("team/app", "v1", layers=2)
        upload = client.start_upload("team/app")  # staged bytes on disk, mid-upload
        assert client.request("PATCH", upload, data=b"staged bytes").status_code == 202
        names = modes(data_dir)
        assert {"metadata.db", "metadata.db-wal", "metadata.db-shm", "keys/blob.key"} <= set(names)
        assert any(name.startswith("blobs/") for name in names)
        assert any(name.startswith("uploads/") and len(name) > len("uploads/") for name in names)
        assert any(name.startswith("keys/signing-") for name in names)
        assert wrong_modes(data_dir) == {}
    finally:
        gateway.stop()


def test_an_open_data_dir_of_an_earlier_version_is_tightened(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with sqlite3.connect(data_dir / "metadata.db") as db:  # as earlier versions left it
        db.execute("PRAGMA journal_mode=WAL")
    os.chmod(data_dir, 0o755)
    os.chmod(data_dir / "metadata.db", 0o644)
    with umask(0o022):
        gateway = Gateway(data_dir).start()
    try:
        assert RegistryClient(gateway.url).request("GET", "/v2/").status_code == 200
        mode = modes(data_dir)
        assert (mode["."], mode["metadata.db"]) == ("0o700", "0o600")
        assert wrong_modes(data_dir) == {}
    finally:
        gateway.stop()
