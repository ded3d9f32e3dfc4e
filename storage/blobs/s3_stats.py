"""Every S3 call the blob driver makes, counted and timed by operation (GetObject,
UploadPart…) for `/metrics`, through botocore's events around each API call: no call site
has to remember it. A call's duration runs from its first attempt to its parsed response
(retries included, a streamed body's transfer not); an error is a response of 300 or more
("client" below 500, "server" from 500) or no response at all ("connection").
"""

from __future__ import annotations

import time
from typing import Any

from ..stats import SPANS, Counts, Timings

__all__ = ["S3Stats"]

_STARTED = "ocigate_started"  # key in botocore's per-call context dict
_OPERATION = "ocigate_operation"


class S3Stats:
    def __init__(self) -> None:
        self.requests: Counts = Counts()  # (operation,)
        self.errors: Counts = Counts()  # (operation, "client" | "server" | "connection")
        self.durations = Timings()  # (operation,)

    def watch(self, client: Any) -> None:
        events = client.meta.events
        events.register("before-call.s3", self._before)
        events.register("after-call.s3", self._after)
        events.register("after-call-error.s3", self._failed)

    def _before(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        context[_OPERATION] = model.name
        context[_STARTED] = time.perf_counter()

    def _after(self, http_response: Any, context: dict[str, Any], **_: Any) -> None:
        operation = self._finished(context)
        if operation is not None:
            status = http_response.status_code
            if status >= 300:
                self.errors[operation, "server" if status >= 500 else "client"] += 1

    def _failed(self, context: dict[str, Any], **_: Any) -> None:
        operation = self._finished(context)
        if operation is not None:
            self.errors[operation, "connection"] += 1

    def _finished(self, context: dict[str, Any]) -> str | None:
        operation: str | None = context.pop(_OPERATION, None)
        started: float | None = context.pop(_STARTED, None)
        if operation is None or started is None:
            return None
        key = (operation,)
        self.requests[key] += 1
        ended = time.perf_counter()
        self.durations.observe(key, ended - started)
        if SPANS.sink is not None:
            SPANS.sink(f"S3 {operation}", started, ended, {"rpc.system": "aws-api", "rpc.method": operation})
        return operation
