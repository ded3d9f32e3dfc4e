"""The peer of bench_hot_path.py: a bare aiohttp handler on uvloop answering every GET and HEAD
with the same bytes and headers from memory, as ocigate's manifest GET by tag does.

    python loadtests/bench/bare_server.py PORT RESPONSE.json

RESPONSE.json: {"headers": {...}, "body_hex": "..."} (what ocigate answered).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import uvloop
from aiohttp import web


def main() -> None:
    port, spec = int(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text())
    body, headers = bytes.fromhex(spec["body_hex"]), spec["headers"]

    async def answer(request: web.Request) -> web.Response:
        return web.Response(body=body, headers=headers)

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)  # and HEAD: aiohttp answers it from the GET handler

    async def run() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
        await asyncio.Event().wait()  # until the benchmark stops this process

    uvloop.run(run())


if __name__ == "__main__":
    main()
