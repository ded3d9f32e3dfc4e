"""What ocigate keeps on disk is its own: directories 0700, files 0600, whatever the umask.

The data dir holds the metadata database (password and token hashes), the blob and signing keys
and the encrypted blobs; no other local user may read any of it. Directories ocigate creates
are made 0700 (each one, not only the last: `mkdir -p` would give the others the umask's
mode), and the data dir and the SQLite files are tightened if an earlier version or an operator
left them open.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("ocigate.storage")

DIR_MODE, FILE_MODE = 0o700, 0o600


def private_dir(path: Path, *, tighten: bool = True) -> Path:
    """Create `path` and any missing parents 0700; with `tighten`, make an existing `path` 0700."""
    missing = []
    current = path
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(DIR_MODE)
        except FileExistsError:  # another process made it meanwhile
            continue
        os.chmod(directory, DIR_MODE)  # the umask may have taken bits that mkdir was given
    if not missing and tighten:
        _tighten(path, DIR_MODE)
    return path


def private_file(path: Path) -> None:
    """Create `path` empty and 0600 if it does not exist, else make it 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != FILE_MODE:
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def tighten_file(path: Path) -> None:
    """Make `path` 0600 if it exists."""
    if path.exists():
        _tighten(path, FILE_MODE)


def _tighten(path: Path, mode: int) -> None:
    current = stat.S_IMODE(path.stat().st_mode)
    if current == mode:
        return
    try:
        os.chmod(path, mode)
    except OSError as exc:  # e.g. a read-only mount: say so, and go on
        log.warning("%s is %o and could not be made %o: %s", path, current, mode, exc)
    else:
        log.info("%s was %o: made %o", path, current, mode)
