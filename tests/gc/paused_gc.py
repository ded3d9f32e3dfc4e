"""`ocigate gc` that stops at one step of the collection, for the kill -9 tests: at `STEP` it
writes `MARKER` and waits for ever, so that the test kills it at a known point. Run as
`python -m tests.gc.paused_gc STEP MARKER [ocigate gc arguments]`."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from ocigate.gateway.cli import main
from ocigate.storage import registries
from ocigate.storage.collector import Collector, Hook


def _pausing(step: str, marker: Path) -> Hook:
    async def hook(at: str) -> None:
        if at == step:
            await asyncio.to_thread(marker.write_text, at)
            await asyncio.Event().wait()  # until SIGKILL

    return hook


def _install(hook: Hook) -> None:
    def collector(self: registries.Registries, _: Hook | None = None) -> Collector:
        return Collector(self.metadata, self.blobs, self.cache, hook=hook, discard=self.discard_cached_blob)

    registries.Registries.collector = collector  # type: ignore[method-assign]


if __name__ == "__main__":
    _install(_pausing(sys.argv[1], Path(sys.argv[2])))
    sys.exit(main(["gc", *sys.argv[3:]]))
