"""The listening socket of one gateway process.

aiohttp's `TCPSite` serves connections with aiohttp's own protocol factory; ours differ (the
request handler of connection.py, behind the limiter's gate when there is one), so the server is
made here with `loop.create_server` and owned here. aiohttp's runner only runs the application:
at cleanup it closes the connections its request handlers serve and the app's resources.
"""

from __future__ import annotations

import asyncio
import ssl

from ocigate.limiter.gate import ProtocolFactory

# Seconds a closing TLS connection waits for the client's close_notify after sending its own.
# asyncio's default, 30 s, lets a client that keeps TCP open without answering (many do not
# bother) hold the connection, and a slot of its per-client limit, long after its last response.
TLS_SHUTDOWN_TIMEOUT = 5.0


class Listener:
    def __init__(self, host: str, port: int, *, backlog: int = 1024, reuse_port: bool = False) -> None:
        self.host = host
        self.port = port  # the bound one once started (0 asks for any free port)
        self._backlog = backlog
        self._reuse_port = reuse_port
        self._server: asyncio.Server | None = None

    async def start(
        self,
        factory: ProtocolFactory,
        tls: ssl.SSLContext | None = None,
        handshake_timeout: float | None = None,
    ) -> None:
        """`tls`: connections start with a TLS handshake (else the protocol may start one)."""
        self._server = await asyncio.get_running_loop().create_server(
            factory,
            self.host,
            self.port,
            backlog=self._backlog,
            reuse_address=True,
            reuse_port=self._reuse_port,
            ssl=tls,
            ssl_handshake_timeout=handshake_timeout if tls is not None else None,
            ssl_shutdown_timeout=TLS_SHUTDOWN_TIMEOUT if tls is not None else None,
        )
        if self._server.sockets:
            self.port = self._server.sockets[0].getsockname()[1]

    def close(self) -> None:
        """Stop accepting connections (those open stay, for the runner to close)."""
        if self._server is not None:
            self._server.close()
