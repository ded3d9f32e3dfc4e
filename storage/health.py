"""Whether each store (metadata, blobs, cache) answers, as requests find it.

An outage is logged once when it starts (with its cause) and once when it ends (with its
length), not once per request, and counted for `/metrics`: while a store is down every request
that needs it fails the same way, and a traceback each would bury the one line that matters.
An outage ends once the store answers `settle` seconds after its last failure: a full disk
still serves reads and small writes between failed large ones, and that is one outage.
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger("ocigate.storage")


SETTLE = 5.0


class StoreHealth:
    def __init__(self, store: str, while_down: str, settle: float = SETTLE) -> None:
        self.store = store  # "metadata", "blobs", "cache"
        self._while_down = while_down  # what requests get meanwhile, for the log line
        self._settle = settle
        self.down_since: float | None = None
        self._last_failure = 0.0
        self.failures = 0  # requests the store failed
        self.outages = 0

    @property
    def up(self) -> bool:
        return self.down_since is None

    def failed(self, cause: BaseException | str) -> bool:
        """One failed request; True if it starts an outage."""
        self.failures += 1
        self._last_failure = time.monotonic()
        if self.down_since is not None:
            return False
        self.down_since = self._last_failure
        self.outages += 1
        log.warning("%s store unavailable (%s): %s", self.store, _describe(cause), self._while_down)
        return True

    def answered(self, note: str = "") -> None:
        """The store answered a request: an outage, if one was on, is over once settled."""
        if self.down_since is None:
            return
        now = time.monotonic()
        if now - self._last_failure < self._settle:
            return
        seconds = now - self.down_since
        self.down_since = None
        log.warning("%s store answers again after %.1f s%s", self.store, seconds, f"; {note}" if note else "")


def _describe(cause: BaseException | str) -> str:
    if isinstance(cause, str):
        return cause
    text = str(cause)
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__
