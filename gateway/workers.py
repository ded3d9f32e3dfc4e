"""`ocigate serve --workers N`: N processes, each with its own event loop, on one port.

Each worker binds the port with SO_REUSEPORT, so the kernel spreads new connections over them
(by a hash of the client's address and port). The parent only supervises: it forks (after
server.py prepared the data dir once, so that workers do not race to create the schema or the
keys), passes SIGTERM/SIGINT (drain) and SIGHUP (TLS reload) on, and restarts a worker that
dies. Limits: with `OCIGATE_REDIS_URL` all workers share exact counts; without it each worker
enforces 1/N of each limit (see limiter/config.py).

Metrics: the parent makes a private directory for prometheus_client's multiprocess mode before
anything imports it (`metrics_directory`, called by cli.py), so that every worker writes its
values there and any of them answers `/metrics` with the sum. A dead worker's live gauges
(connections open…) are removed when it is reaped; its counters stay, so totals never go
back; the directory goes when the parent exits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable

from .settings import Settings

log = logging.getLogger("ocigate")
MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's

_RESTART_BACKOFF = 1.0  # seconds; a worker that keeps dying at start must not spin the CPU
_made: list[str] = []  # metrics directories this process made, and so removes at the end


def metrics_directory() -> str:
    """A fresh private directory for the workers' metrics, named in the environment where
    prometheus_client, imported after this, looks for it."""
    path = tempfile.mkdtemp(prefix="ocigate-metrics-")  # 0700
    os.environ[MULTIPROCESS_DIR_ENV] = path
    _made.append(path)
    return path


def supervise(settings: Settings, run_worker: Callable[[], None]) -> None:
    try:
        _supervise(settings, run_worker)
    finally:
        for directory in _made:  # never one this process was handed
            shutil.rmtree(directory, ignore_errors=True)


def _supervise(settings: Settings, run_worker: Callable[[], None]) -> None:
    from prometheus_client import multiprocess

    workers = settings.server.workers
    if settings.redis.url is None:
        log.warning(
            "%d workers without OCIGATE_REDIS_URL: each enforces 1/%d of the per-client limits",
            workers,
            workers,
        )
    stopping = False
    children: dict[int, float] = {}  # pid → start time

    def _stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            _signal(pid, signal.SIGTERM)

    def _reload(signum: int, frame: object) -> None:
        for pid in children:
            _signal(pid, signal.SIGHUP)

    for _ in range(workers):
        children[_fork(run_worker)] = time.monotonic()
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGHUP, _reload)
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        started = children.pop(pid, 0.0)
        if started and os.environ.get(MULTIPROCESS_DIR_ENV):
            multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
        if not started or stopping:
            continue
        log.error("worker %d exited (status %d): starting another", pid, os.waitstatus_to_exitcode(status))
        if time.monotonic() - started < _RESTART_BACKOFF:
            time.sleep(_RESTART_BACKOFF)
        if not stopping:
            children[_fork(run_worker)] = time.monotonic()
    log.info("all workers stopped")


def _fork(run_worker: Callable[[], None]) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until the worker's loop handles it
        run_worker()
        code = 0
    except BaseException:
        log.exception("worker %d failed", os.getpid())
    finally:
        logging.shutdown()
        os._exit(code)


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
