"""Named locks among the processes of one host, freed by the kernel when a holder dies.

The SQLite engine's `try_lock` (one collector at a time): every process on a SQLite file runs on
its host, so an exclusive `flock` on a lock file next to the database is exactly the scope
needed. A process killed with -9 loses it with its descriptors, at once (a lease row in the
database outlived it by its whole lease). `flock` belongs to the open file description, so two
attempts in one process, each opening the file, exclude each other too.

The holder unlinks the file before letting go, so files do not pile up (there would be one per
registry ever collected; a killed holder's stays until the next holder of its name). Whoever
locked a file just unlinked (opened before the unlink) sees that the path no longer names it, and
takes the path's new file instead: a holder always holds the file the path names.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from ..private import FILE_MODE

# SECURITY: no symlink followed (nor a FIFO waited on) where the lock file should be
_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class HostLocks:
    """Locks named by strings, as files `<database>.lock-<hash of the name>` beside it."""

    def __init__(self, database: Path) -> None:
        self._database = database

    def path(self, name: str) -> Path:
        # SECURITY: the name (a registry id, say) only ever reaches the path as a hash
        digest = hashlib.blake2b(name.encode(), digest_size=16).hexdigest()
        return self._database.with_name(f"{self._database.name}.lock-{digest}")

    async def take(self, name: str) -> HeldLock | None:
        """The lock `name`, or None at once if another holds it; OSError if its file cannot be
        made."""
        path = self.path(name)
        # in a thread (a slow disk must not stall the loop), and a future, not a task: a loop
        # shutting down cancels tasks, and the thread would go on to take a lock nobody gives back
        taking = asyncio.get_running_loop().run_in_executor(None, _take, path)
        try:
            fd = await asyncio.shield(taking)
        except asyncio.CancelledError:  # the thread goes on: give back what it takes
            taking.add_done_callback(lambda done: _give_back_if_taken(path, done))
            raise
        return None if fd is None else HeldLock(path, fd)


@dataclass(frozen=True, slots=True)
class HeldLock:
    path: Path
    fd: int

    async def release(self) -> None:
        await asyncio.to_thread(_give_back, self.path, self.fd)


def _take(path: Path) -> int | None:
    """The descriptor holding the lock on `path`'s file, or None if another holds it."""
    while True:
        fd = os.open(path, _OPEN_FLAGS, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if _names(path, fd):
                return fd
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # its holder unlinked it meanwhile: the next try opens the path's new file


def _names(path: Path, fd: int) -> bool:
    try:
        linked = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (linked.st_dev, linked.st_ino) == (held.st_dev, held.st_ino)


def _give_back(path: Path, fd: int) -> None:
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # while still held: see the module's docstring
    finally:
        os.close(fd)


def _give_back_if_taken(path: Path, taking: asyncio.Future[int | None]) -> None:
    if not taking.cancelled() and taking.exception() is None:
        fd = taking.result()
        if fd is not None:
            _give_back(path, fd)
