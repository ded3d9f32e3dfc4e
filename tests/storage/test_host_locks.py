"""The SQLite engine's collector locks (storage/metadata/host_locks.py), in one process: two
opens exclude each other, names never reach the path, a planted symlink is refused, a take
cancelled midway gives its lock back. Between processes, and killed ones: tests/gc/test_killed_sqlite.py."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ocigate.storage.errors import StorageUnavailable
from ocigate.storage.metadata.host_locks import HostLocks
from ocigate.storage.metadata.sqlite import SqliteEngine


def _files(directory: Path) -> list[str]:
    return sorted(entry.name for entry in directory.iterdir())


async def test_a_lock_excludes_every_other_take_until_released_and_leaves_no_file(tmp_path: Path) -> None:
    database = tmp_path / "metadata.db"
    locks, other_process = HostLocks(database), HostLocks(database)
    first = await locks.take("gc:sweep")
    assert first is not None
    assert await locks.take("gc:sweep") is None
    assert await other_process.take("gc:sweep") is None
    second = await other_process.take("gc:registry:1")  # another name: its own lock
    assert second is not None
    assert first.path.stat().st_mode & 0o777 == 0o600
    await first.release()
    again = await other_process.take("gc:sweep")
    assert again is not None
    for held in (second, again):
        await held.release()
    assert _files(tmp_path) == []


def test_a_lock_name_never_reaches_the_path(tmp_path: Path) -> None:
    database = tmp_path / "metadata.db"
    for name in ("../../etc/passwd", "/abs", "gc:registry:x/../y", "\x00"):
        path = HostLocks(database).path(name)
        assert path.parent == tmp_path
        assert path.name.startswith("metadata.db.lock-")
        assert path.name.removeprefix("metadata.db.lock-").isalnum()


async def test_a_symlink_planted_at_the_lock_path_is_refused_not_followed(tmp_path: Path) -> None:
    engine = await SqliteEngine.open(tmp_path / "metadata.db")
    try:
        target = tmp_path / "elsewhere"
        HostLocks(tmp_path / "metadata.db").path("gc:sweep").symlink_to(target)
        with pytest.raises(StorageUnavailable):
            async with engine.try_lock("gc:sweep"):
                raise AssertionError("locked through a symlink")
        assert not target.exists()
        async with engine.try_lock("gc:other") as held:  # other names are unaffected
            assert held
    finally:
        await engine.close()


async def test_a_take_cancelled_midway_gives_its_lock_back(tmp_path: Path) -> None:
    locks = HostLocks(tmp_path / "metadata.db")
    taking = asyncio.ensure_future(locks.take("gc:sweep"))
    await asyncio.sleep(0)  # the take is in its thread now
    taking.cancel()
    with pytest.raises(asyncio.CancelledError):
        await taking
    for _ in range(1200):  # the thread ends, then its lock is given back: count-bounded wait
        held = await locks.take("gc:sweep")
        if held is not None:
            await held.release()
            return
        await asyncio.sleep(0.05)
    raise AssertionError("a cancelled take kept its lock")
