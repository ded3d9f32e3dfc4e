"""A server's user-space instructions counted under callgrind (valgrind): steady where timings on
a shared machine are not. Used by metrics_overhead.py and bench/hot_path_callgrind.py."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path


def started(argv: list[str], env: dict[str, str], out: Path, cwd: Path) -> subprocess.Popen[bytes]:
    """`argv` under callgrind, instrumentation off until `counted`; its counts go to `out`*."""
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
    return subprocess.Popen(
        [*command, *argv], env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def counted(pid: int, run: Callable[[], None]) -> None:
    """Run `run` with the instrumentation of process `pid` on, then dump its counts."""
    control = ["callgrind_control", "-i"]
    subprocess.run([*control, "on", str(pid)], capture_output=True, check=True)
    run()
    subprocess.run([*control, "off", str(pid)], capture_output=True, check=True)
    subprocess.run(["callgrind_control", "-d", str(pid)], capture_output=True, check=True)


def total(out: Path) -> int:
    """The instructions counted in the dumps of `out`."""
    count = 0
    for dump in out.parent.glob(f"{out.name}*"):
        for line in dump.read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                count = max(count, int(line.split()[1]))
    return count
