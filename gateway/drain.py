"""Graceful drain: how a process leaves a pool of replicas without failing a request it took.

On SIGTERM (server.py):
1. `/readyz` answers 503 at once, so load balancers stop sending new connections here; the
   listener still accepts for `OCIGATE_DRAIN_DELAY` seconds, the time they take to notice.
2. Meanwhile every response says `Connection: close` and closes its connection, and connections
   idle between requests are closed, so keep-alive clients reconnect (to another replica).
3. Then the listener closes; requests in flight get until `OCIGATE_DRAIN_TIMEOUT` (counted from
   the signal) to finish, after which they are cut. The process exits 0.
Uploads left open are rows in the shared metadata store: their next PATCH goes to any replica.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiohttp import web

from .connection import RegistryRequestHandler

log = logging.getLogger("ocigate")

_POLL_SECONDS = 0.05  # how soon a connection that went idle is closed


class Drain:
    """Whether this process is draining; what `/readyz` and new connections consult."""

    def __init__(self, delay: float, timeout: float) -> None:
        self.delay = delay
        self.timeout = timeout
        self.draining = False

    async def run(self, server: web.Server, stop_accepting: Callable[[], None]) -> None:
        """Steps 1 to 3; `stop_accepting()` closes the listener. Returns when no connection is
        left or the timeout is reached (the caller then cuts what is left)."""
        loop = asyncio.get_running_loop()
        self.draining = True
        start = loop.time()
        log.info(
            "draining: /readyz answers 503; accepting for %g s more, requests get up to %g s",
            self.delay,
            self.timeout,
        )
        accepting = True
        while True:
            for connection in server.connections:
                if isinstance(connection, RegistryRequestHandler):
                    connection.drain()
            elapsed = loop.time() - start
            if accepting and elapsed >= self.delay:
                stop_accepting()
                accepting = False
            if not accepting and not server.connections:
                log.info("drained in %.1f s", elapsed)
                return
            if elapsed >= self.timeout and not accepting:
                busy = len(server.connections)
                log.warning("drain timeout (%g s): cutting %d connections still busy", self.timeout, busy)
                return
            await asyncio.sleep(_POLL_SECONDS)


DRAIN = web.AppKey("drain", Drain)
